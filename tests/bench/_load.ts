/**
 * HTTP load from a separate process: autocannon, so the load generator does
 * not compete inside the process it measures (it still shares the machine's
 * cores, which is why every figure has its baseline in the same run).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const bin = createRequire(import.meta.url).resolve('autocannon/autocannon.js');
const lib = createRequire(import.meta.url).resolve('autocannon');

export type Load = { rps: number; p50: number; p99: number; errors: number; non2xx: number; requests: number };

export type LoadOptions = {
  connections: number;
  seconds: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
};

type AutocannonResult = {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
};

const toLoad = (r: AutocannonResult, rps: number): Load => ({ rps, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx, requests: r.requests.total });

/** Closed-loop keep-alive load on `url` for `seconds`; requests/s and latency percentiles (ms). */
export async function autocannon(url: string, o: LoadOptions): Promise<Load> {
  const args = [bin, '-j', '-c', String(o.connections), '-d', String(o.seconds), '-m', o.method ?? 'GET'];
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}=${v}`);
  if (o.body !== undefined) args.push('-b', o.body);
  args.push(url);
  const { stdout } = await promisify(execFile)(process.execPath, args, { maxBuffer: 16 * 1024 * 1024 });
  const r = JSON.parse(stdout) as AutocannonResult;
  return toLoad(r, r.requests.average);
}

/** One request of a run: its body and the headers it adds to the run's own. */
export type Shot = { body?: string; headers?: Record<string, string> };

// The driver: autocannon's API in a child process, each request taking the next shot in turn.
// autocannon notices the end of a run only on its once-a-second tick, so the driver times the
// run itself, from the start to the last response.
const DRIVER = `
import fs from 'node:fs';
const { default: autocannon } = await import(process.env.AUTOCANNON_LIB);
const spec = JSON.parse(fs.readFileSync(process.env.LOAD_SPEC, 'utf8'));
let i = 0;
const next = (req) => {
  const s = spec.shots[i++ % spec.shots.length];
  return { ...req, body: s.body ?? req.body, headers: { ...req.headers, ...(s.headers ?? {}) } };
};
let start = 0;
let last = 0;
const run = autocannon({ url: spec.url, connections: spec.connections, amount: spec.shots.length, method: spec.method, headers: spec.headers, ...(spec.overallRate ? { overallRate: spec.overallRate } : {}), requests: [{ setupRequest: next }] }, (err, r) => {
  if (err) throw err;
  process.stdout.write(JSON.stringify({ ...r, elapsedMs: last - start }));
});
run.on('start', () => (start = performance.now()));
run.on('response', () => (last = performance.now()));
`;

/**
 * Sends every shot once (each request its own body and headers, so no two
 * are the same notification, login or signup), `connections` in flight
 * (and at most `overallRate` requests per second when given: an open-ish load),
 * from a separate process; rate over the whole run and latency percentiles.
 */
export async function autocannonShots(url: string, o: { connections: number; method?: 'GET' | 'POST'; headers?: Record<string, string>; shots: Shot[]; overallRate?: number }): Promise<Load> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-load-'));
  const spec = path.join(dir, 'spec.json');
  try {
    fs.writeFileSync(spec, JSON.stringify({ url, connections: o.connections, method: o.method ?? 'POST', headers: o.headers ?? {}, shots: o.shots, overallRate: o.overallRate }));
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', DRIVER], {
      env: { ...process.env, LOAD_SPEC: spec, AUTOCANNON_LIB: pathToFileURL(lib).href },
      maxBuffer: 16 * 1024 * 1024,
    });
    const r = JSON.parse(stdout) as AutocannonResult & { elapsedMs: number };
    return toLoad(r, r.requests.total / (Math.max(r.elapsedMs, 1) / 1000));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** "12,345 req/s (p50 3 ms, p99 9 ms)" with error counts when there are any. */
export function describe(l: Load): string {
  const bad = l.errors + l.non2xx ? `, ${l.errors} errors, ${l.non2xx} non-2xx` : '';
  return `${Math.round(l.rps).toLocaleString('en')} req/s (p50 ${l.p50} ms, p99 ${l.p99} ms${bad})`;
}
