/**
 * Runs every function as its own process, like Knative runs each as its own
 * Service. A function whose func.yaml scale `min` is 0 starts on its first
 * request or event and stops after `idleSeconds` without traffic; one that
 * crashes is started again. Each runs from its esbuild bundle (bundles.ts),
 * rebuilt first if its sources changed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { repoRoot } from '../config.ts';
import { functionBundles, type FunctionBundle } from './bundles.ts';
import { functionEnv, functionNames, functionSpec, type FuncSpec } from '../funcspec.ts';
import { log } from '../log.ts';

/**
 * V8 settings for function processes, which are many and mostly idle here:
 * a 1 MB young generation (the 16 MB default grows under the first burst of
 * requests and is kept) and one GC helper thread save about 20 MB each; no
 * background GC or compiler work (`--single-threaded`) saves 10-15 MB more,
 * with no throughput change measured on a bare function at 50 connections
 * (13-14k req/s either way, issue 23).
 */
export const FUNCTION_NODE_ARGS = ['--max-semi-space-size=1', '--single-threaded', '--v8-pool-size=1'];

type Launch = { bundle: FunctionBundle; secrets: { give: Record<string, string>; withhold: string[] } };

export type FunctionState = 'stopped' | 'starting' | 'running' | 'crashed';

export type FunctionStatus = {
  name: string;
  port: number;
  invoke: 'http' | 'cloudevent';
  minScale: number;
  state: FunctionState;
  pid?: number;
  restarts: number;
};

class FunctionProcess {
  state: FunctionState = 'stopped';
  child?: ChildProcess;
  restarts = 0;
  lastUsed = Date.now();
  private starting?: Promise<void>;
  private stopping = false;

  constructor(
    readonly name: string,
    readonly port: number,
    readonly spec: FuncSpec,
    private readonly env: Record<string, string>,
    private readonly launch: (name: string) => Promise<Launch>,
  ) {}

  get minScale(): number {
    return this.spec.deploy?.options?.scale?.min ?? 0;
  }

  /** Starts the process if needed and resolves once it answers its liveness probe. */
  ensureRunning(): Promise<void> {
    this.lastUsed = Date.now();
    if (this.state === 'running') return Promise.resolve();
    this.starting ??= this.spawn().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async spawn(): Promise<void> {
    this.state = 'starting';
    this.stopping = false;
    let launch: Launch;
    try {
      launch = await this.launch(this.name);
    } catch (err) {
      this.state = 'crashed';
      throw err;
    }
    const { bundle, secrets } = launch;
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.env, ...functionEnv(this.spec), PORT: String(this.port), FUNCTION_NAME: this.name };
    for (const k of secrets.withhold) delete env[k];
    const child = spawn(process.execPath, [...FUNCTION_NODE_ARGS, bundle.file, this.name], {
      cwd: repoRoot,
      env: { ...env, ...secrets.give },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    this.child = child;
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      const wasRunning = this.state === 'running' || this.state === 'starting';
      // SIGINT/SIGTERM mean someone asked it to stop (Ctrl-C reaches the whole
      // process group): only a crash is restarted.
      const asked = this.stopping || signal === 'SIGINT' || signal === 'SIGTERM';
      this.state = asked ? 'stopped' : 'crashed';
      if (!asked && wasRunning) {
        this.restarts++;
        log.warn({ fn: this.name, code, signal, restarts: this.restarts }, 'function exited, restarting');
        const delay = Math.min(30_000, 250 * 2 ** Math.min(this.restarts, 7));
        setTimeout(() => {
          if (this.state === 'crashed') this.ensureRunning().catch(() => {});
        }, delay).unref();
      }
    });
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (!this.child || this.child !== child) throw new Error(`${this.name} exited during start`);
      try {
        const res = await fetch(`http://127.0.0.1:${this.port}/health/liveness`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) {
          this.state = 'running';
          return;
        }
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    throw new Error(`${this.name} did not start within 60 s`);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child) {
      this.state = 'stopped';
      return;
    }
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    this.state = 'stopped';
  }

  status(): FunctionStatus {
    return {
      name: this.name,
      port: this.port,
      invoke: this.spec.invoke === 'cloudevent' ? 'cloudevent' : 'http',
      minScale: this.minScale,
      state: this.state,
      pid: this.child?.pid,
      restarts: this.restarts,
    };
  }
}

export type SupervisorOptions = {
  portBase: number;
  /** Extra env for every function (K_SINK, ...). */
  env?: Record<string, string>;
  /** Only these functions (tests); default all of functions/. */
  only?: string[];
  /** Scale-to-zero idle time. */
  idleSeconds?: number;
  /**
   * Secret env given only to the functions whose code uses it (by env name,
   * e.g. JWT_PRIVATE_KEY to login and refresh), decided from each function's
   * module graph exactly as on Kubernetes (deploy/analyze.ts, run when the
   * bundle is built). Each name is
   * also removed from what the other functions inherit from the host.
   */
  secretEnv?: Record<string, string>;
};

export class Supervisor {
  private readonly procs = new Map<string, FunctionProcess>();
  private idleTimer?: NodeJS.Timeout;
  private bundling?: Promise<Record<string, FunctionBundle>>;

  constructor(private readonly opts: SupervisorOptions) {
    const names = opts.only ?? functionNames();
    names.forEach((name, i) => {
      this.procs.set(name, new FunctionProcess(name, opts.portBase + i, functionSpec(name), opts.env ?? {}, async (n) => ({ bundle: await this.bundleFor(n), secrets: await this.secretsFor(n) })));
    });
  }

  /**
   * The current bundle of a function about to start. Starts that arrive
   * together share one check (and one esbuild pass over every stale function
   * of this host); a later start checks again, so an edit is picked up.
   */
  async bundleFor(name: string): Promise<FunctionBundle> {
    this.bundling ??= functionBundles(this.names()).finally(() => setImmediate(() => (this.bundling = undefined)));
    return (await this.bundling)[name]!;
  }

  /** The secret env one function gets, and the names it must not inherit. */
  async secretsFor(name: string): Promise<{ give: Record<string, string>; withhold: string[] }> {
    const secretEnv = this.opts.secretEnv ?? {};
    const uses = new Set((await this.bundleFor(name)).secrets);
    return { give: Object.fromEntries(Object.entries(secretEnv).filter(([k]) => uses.has(k))), withhold: Object.keys(secretEnv) };
  }

  names(): string[] {
    return [...this.procs.keys()];
  }

  has(name: string): boolean {
    return this.procs.has(name);
  }

  spec(name: string): FuncSpec | undefined {
    return this.procs.get(name)?.spec;
  }

  /** Starts the functions that must always run (scale min ≥ 1) and the idle reaper. */
  async start(): Promise<void> {
    await Promise.all([...this.procs.values()].filter((p) => p.minScale > 0).map((p) => p.ensureRunning()));
    const idleMs = (this.opts.idleSeconds ?? 600) * 1000;
    this.idleTimer = setInterval(
      () => {
        for (const p of this.procs.values()) {
          if (p.minScale === 0 && p.state === 'running' && Date.now() - p.lastUsed > idleMs) {
            log.info({ fn: p.name }, 'scaling to zero after idle');
            p.stop().catch(() => {});
          }
        }
      },
      Math.min(idleMs, 10_000),
    );
    this.idleTimer.unref();
  }

  /**
   * The base URL of a running function, starting it first if it is scaled to
   * zero (what Knative's activator does).
   */
  async url(name: string): Promise<string> {
    const p = this.procs.get(name);
    if (!p) throw new Error(`unknown function ${name}`);
    await p.ensureRunning();
    return `http://127.0.0.1:${p.port}`;
  }

  /** Marks traffic so an active function is not reaped. */
  touch(name: string): void {
    const p = this.procs.get(name);
    if (p) p.lastUsed = Date.now();
  }

  status(): FunctionStatus[] {
    return [...this.procs.values()].map((p) => p.status());
  }

  async stop(): Promise<void> {
    if (this.idleTimer) clearInterval(this.idleTimer);
    await Promise.all([...this.procs.values()].map((p) => p.stop()));
  }
}
