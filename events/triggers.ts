/**
 * Loader of events/triggers.yaml, the routing table (format documented at the
 * top of that file). Everything that routes events (the local broker, the
 * Knative generator, tests) reads triggers through here, so a typo in a
 * subscriber or event type fails start-up with a message naming the row
 * instead of silently never delivering.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { z } from 'zod';
import { isKnownType } from './catalog.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
export const triggersFile = path.join(here, 'triggers.yaml');
const functionsDir = path.resolve(here, '../functions');

/** ISO-8601 duration (PnDTnHnMnS, fractions allowed on the last unit) → milliseconds; undefined if malformed. */
export function isoDurationMs(s: string): number | undefined {
  const m = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(s);
  if (!m || s === 'P' || s.endsWith('T')) return undefined;
  const [, d, h, min, sec] = m.map((x) => (x === undefined ? 0 : Number(x)));
  return Math.round((((d as number) * 24 + (h as number)) * 60 + (min as number)) * 60_000 + (sec as number) * 1000);
}

const duration = z.string().refine((s) => isoDurationMs(s) !== undefined, 'must be an ISO-8601 duration such as PT0.5S or PT1M');

const deliverySchema = z
  .object({
    retry: z.number().int().min(0).max(100).default(5),
    backoffPolicy: z.enum(['exponential', 'linear']).default('exponential'),
    backoffDelay: duration.default('PT0.5S'),
    timeout: duration.default('PT30S'),
  })
  .strict();

const triggerSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a DNS label: lowercase letters, digits and -, at most 63'),
    filter: z
      .object({
        attributes: z
          .record(z.string().regex(/^[a-z0-9]{1,20}$/, 'attribute names are lowercase letters and digits'), z.string().min(1))
          .refine((a) => typeof a.type === 'string', 'must list at least `type`'),
      })
      .strict(),
    subscriber: z.string().min(1),
    delivery: deliverySchema.default(deliverySchema.parse({})),
    parallelism: z.number().int().min(1).max(1000).default(1),
  })
  .strict();

export type Trigger = z.infer<typeof triggerSchema>;

export class TriggersError extends Error {
  constructor(
    readonly problems: string[],
    file = 'events/triggers.yaml',
  ) {
    super(`Invalid ${file}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'TriggersError';
  }
}

export type LoadOptions = {
  /** YAML text to parse instead of the file (tests). */
  text?: string;
  file?: string;
  /** Whether a subscriber exists; default: a folder of functions/ with a func.yaml. */
  functionExists?: (name: string) => boolean;
};

function defaultFunctionExists(name: string): boolean {
  return /^[a-z0-9-]+$/.test(name) && fs.existsSync(path.join(functionsDir, name, 'func.yaml'));
}

/**
 * Parses and validates the routing table. Throws TriggersError listing every
 * problem (bad shape, duplicate name, unknown subscriber, unknown type).
 */
export function loadTriggers(o: LoadOptions = {}): Trigger[] {
  const file = o.file ?? triggersFile;
  const text = o.text ?? fs.readFileSync(file, 'utf8');
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new TriggersError([`not valid YAML: ${(err as Error).message}`], path.basename(file));
  }
  const root = z
    .object({ triggers: z.array(z.unknown()).nullable().default([]) })
    .strict()
    .safeParse(doc ?? {});
  if (!root.success) throw new TriggersError(['the file must hold one key, `triggers:`, with a list of rows'], path.basename(file));
  const exists = o.functionExists ?? defaultFunctionExists;
  const problems: string[] = [];
  const out: Trigger[] = [];
  const seen = new Set<string>();
  (root.data.triggers ?? []).forEach((row, i) => {
    const label = `row ${i + 1}${row && typeof row === 'object' && 'name' in row ? ` (${String((row as { name: unknown }).name)})` : ''}`;
    const r = triggerSchema.safeParse(row);
    if (!r.success) {
      for (const issue of r.error.issues) problems.push(`${label}: ${issue.path.join('.') || 'row'}: ${issue.message}`);
      return;
    }
    const t = r.data;
    if (seen.has(t.name)) problems.push(`${label}: name: duplicate trigger name ${t.name}`);
    seen.add(t.name);
    if (!exists(t.subscriber)) problems.push(`${label}: subscriber: no function named ${t.subscriber} (expected functions/${t.subscriber}/func.yaml)`);
    if (!isKnownType(t.filter.attributes.type as string)) {
      problems.push(`${label}: filter.attributes.type: ${t.filter.attributes.type} is not in the event catalogue (events/catalog.ts)`);
    }
    out.push(t);
  });
  if (problems.length) throw new TriggersError(problems, path.basename(file));
  return out;
}

/** Milliseconds to wait before retry number `attempt` (1-based), Knative's formula. */
export function backoffMs(t: Pick<Trigger, 'delivery'>, attempt: number): number {
  const base = isoDurationMs(t.delivery.backoffDelay) ?? 500;
  return t.delivery.backoffPolicy === 'linear' ? base * attempt : base * 2 ** attempt;
}

/** Per-attempt delivery timeout in milliseconds. */
export function timeoutMs(t: Pick<Trigger, 'delivery'>): number {
  return isoDurationMs(t.delivery.timeout) ?? 30_000;
}
