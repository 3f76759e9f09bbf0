/**
 * Kill Bill for tests: the simulator in-process on a random port, with the
 * adapter pointed at it, plus a recorder that checks every answer the test
 * triggered against Kill Bill's OpenAPI (node_modules/killbill/codegen/kbswagger.yaml).
 *
 *   beforeAll(async () => { await migrate(); kb = await startTestKillbill({ retries: '50ms,100ms' }); });
 *   afterAll(async () => { await kb.stop(); });
 *   await kb.adapter.ensureAccount({ customerId });          // platform/src/billing/killbill.ts
 *   await kb.adapter.moveClock({ days: 14 });               // everything due fires
 *   expect(kb.contractViolations()).toEqual([]);
 *
 * It sets KILLBILL_URL (and KILLBILL_SIMULATOR) in process.env, so functions
 * started in-process with startFunction() talk to this simulator.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import YAML from 'yaml';
import { repoRoot, resetConfig } from '@saasodoo/platform/config';
import { KillBill, resetKillbill } from '@saasodoo/platform/billing/killbill';
import { startSimulator, type Simulator, type SimulatorOptions } from '@saasodoo/platform/killbill-sim/index';

export type ContractRecord = { method: string; path: string; status: number; body: unknown };

export type TestKillbill = {
  sim: Simulator;
  url: string;
  adapter: KillBill;
  records: ContractRecord[];
  /** Answers (recorded through `adapter`) that do not match kbswagger.yaml. */
  contractViolations(): string[];
  stop(): Promise<void>;
};

/** Starts the simulator on a random port and points this process's config at it. */
export async function startTestKillbill(o: Partial<SimulatorOptions> = {}): Promise<TestKillbill> {
  const sim = await startSimulator({ port: 0, retries: '100ms,200ms,400ms', deliveryIntervalMs: 50, ...o });
  process.env.KILLBILL_URL = sim.url;
  process.env.KILLBILL_SIMULATOR = 'true';
  process.env.STRIPE_API_URL = sim.stripeUrl;
  process.env.STRIPE_SECRET_KEY = 'sk_test_saasodoo_simulator';
  resetConfig();
  resetKillbill();
  const adapter = new KillBill({ url: sim.url, readRetries: 0 });
  await adapter.syncConfig(); // a fresh tenant has no catalogue or overdue config until they are uploaded, as in Kill Bill
  const records: ContractRecord[] = [];
  adapter.http.interceptors.response.use((res) => {
    records.push({ method: String(res.config.method).toUpperCase(), path: new URL(res.request?.path ?? res.config.url ?? '/', sim.url).pathname, status: res.status, body: res.data });
    return res;
  });
  return {
    sim,
    url: sim.url,
    adapter,
    records,
    contractViolations: () => records.flatMap((r) => validateAgainstSwagger(r)),
    stop: () => sim.stop(),
  };
}

type SwaggerOp = { responses: Record<string, { schema?: unknown }> };
const compiled = new Map<string, ReturnType<Ajv['compile']>>();
let swagger: { paths: Record<string, Record<string, SwaggerOp>>; ajv: Ajv } | undefined;

function loadSwagger() {
  if (swagger) return swagger;
  const file = path.join(repoRoot, 'node_modules/killbill/codegen/kbswagger.yaml');
  const doc = YAML.parse(fs.readFileSync(file, 'utf8'));
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema({ $id: 'kb', definitions: doc.definitions });
  swagger = { paths: doc.paths, ajv };
  return swagger;
}

/** Errors of one recorded answer against the operation's response schema in kbswagger.yaml. */
export function validateAgainstSwagger(r: ContractRecord): string[] {
  const { paths, ajv } = loadSwagger();
  if (r.path.startsWith('/1.0/kb/test/') || r.path.startsWith('/simulator/') || r.path.startsWith('/plugins/')) return []; // not in kbswagger.yaml (plugins have their own APIs)
  // kbswagger.yaml gives creates the schema of the created object, but Kill Bill answers 201 with only a
  // Location header (the killbill client follows it with followLocationHeaderInterceptor): an empty body is right.
  if (r.status === 201 && (r.body === '' || r.body === undefined || r.body === null)) return [];
  const candidates = Object.keys(paths)
    .filter((p) => new RegExp(`^${p.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(r.path) && paths[p][r.method.toLowerCase()])
    .sort((a, b) => (a.match(/\{/g)?.length ?? 0) - (b.match(/\{/g)?.length ?? 0));
  const template = candidates[0];
  if (!template) return [`${r.method} ${r.path}: no such operation in kbswagger.yaml`];
  const op = paths[template][r.method.toLowerCase()];
  const response = op.responses[String(r.status)];
  if (!response) return [`${r.method} ${template}: status ${r.status} not documented`];
  if (!response.schema) return [];
  const cacheKey = `${r.method} ${template} ${r.status}`;
  let validate = compiled.get(cacheKey);
  if (!validate) {
    validate = ajv.compile(JSON.parse(JSON.stringify(response.schema).replace(/"#\/definitions\//g, '"kb#/definitions/')));
    compiled.set(cacheKey, validate);
  }
  if (validate(r.body)) return [];
  return [`${r.method} ${template} ${r.status}: ${ajv.errorsText(validate.errors)}`];
}

export type Received = { headers: http.IncomingHttpHeaders; body: { eventType: string; accountId: string | null; objectType: string; objectId: string | null; metaData: string | null } };

/**
 * A stand-in webhook receiver that records what the simulator posts.
 * `fail` makes it answer 503 (to exercise retries) until set back.
 */
export async function startReceiver(): Promise<{ url: string; received: Received[]; fail: boolean; close(): Promise<void> }> {
  const state = { received: [] as Received[], fail: false };
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (state.fail) {
      res.writeHead(503).end();
      return;
    }
    state.received.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
    res.writeHead(200).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  return Object.assign(state, {
    url,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
}

/** Polls `check` until it returns true (or throws after `timeoutMs`). */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
