/**
 * HTTP load from a separate process: autocannon, so the load generator does
 * not compete inside the process it measures (it still shares the machine's
 * cores, which is why every figure has its baseline in the same run).
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';

const bin = createRequire(import.meta.url).resolve('autocannon/autocannon.js');

export type Load = { rps: number; p50: number; p99: number; errors: number; non2xx: number; requests: number };

export type LoadOptions = {
  connections: number;
  seconds: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
};

/** Closed-loop keep-alive load on `url` for `seconds`; requests/s and latency percentiles (ms). */
export async function autocannon(url: string, o: LoadOptions): Promise<Load> {
  const args = [bin, '-j', '-c', String(o.connections), '-d', String(o.seconds), '-m', o.method ?? 'GET'];
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}=${v}`);
  if (o.body !== undefined) args.push('-b', o.body);
  args.push(url);
  const { stdout } = await promisify(execFile)(process.execPath, args, { maxBuffer: 16 * 1024 * 1024 });
  const r = JSON.parse(stdout) as {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    errors: number;
    timeouts: number;
    non2xx: number;
  };
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx, requests: r.requests.total };
}

/** "12,345 req/s (p50 3 ms, p99 9 ms)" with error counts when there are any. */
export function describe(l: Load): string {
  const bad = l.errors + l.non2xx ? `, ${l.errors} errors, ${l.non2xx} non-2xx` : '';
  return `${Math.round(l.rps).toLocaleString('en')} req/s (p50 ${l.p50} ms, p99 ${l.p99} ms${bad})`;
}
