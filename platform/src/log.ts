/**
 * JSON logging with pino. Any field whose name looks like a credential is
 * redacted wherever it sits, so a careless `log.info({ body })` cannot leak a
 * password or token.
 */
import { pino, type Logger } from 'pino';

const SENSITIVE = /pass(word)?|token|secret|authori[sz]ation|cookie|api[-_]?key|private[-_]?key|credential/i;

/** Deep-copies a value with every sensitive-looking key replaced by [redacted]. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { type: value.name, message: value.message, stack: value.stack };
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SENSITIVE.test(k) ? '[redacted]' : redact(v, depth + 1);
  }
  return out;
}

/** Also scrubs secrets embedded in strings: URLs with credentials and bearer tokens. */
export function scrubString(s: string): string {
  return s
    .replace(/(\w+:\/\/[^:/\s]+:)[^@\s]+@/g, '$1[redacted]@')
    .replace(/(bearer\s+)[\w.~+/=-]+/gi, '$1[redacted]')
    .replace(/([?&](?:token|password|secret)=)[^&\s"]+/gi, '$1[redacted]');
}

export type { Logger };

function make(destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level: process.env.LOG_LEVEL ?? 'info',
      base: { svc: process.env.FUNCTION_NAME ?? process.env.SERVICE_NAME ?? 'platform' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        log: (obj) => redact(obj) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          const scrubbed = args.map((a) => (typeof a === 'string' ? scrubString(a) : a));
          method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
}

/** The process logger. */
export const log: Logger = make();

/** A logger writing to a given stream (tests capture lines with it). */
export function createLogger(destination: pino.DestinationStream): Logger {
  return make(destination);
}
