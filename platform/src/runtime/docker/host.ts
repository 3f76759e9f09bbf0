/**
 * The host side of the docker driver (`npm start` with RUNTIME_DRIVER=docker):
 * routes `<subdomain>.localhost` for the gateway to the instance's loopback
 * port (or its stopped / suspended / starting page), brings back instances
 * that should run when the platform starts, and follows the Engine's events
 * stream so a container that dies outside the platform (`docker kill`,
 * `docker stop`) while its instance should run is started again at once, as
 * a Deployment brings back its pod: the next time after 10 s, doubling to
 * 5 min while it keeps dying, as the kubelet backs off (health-probe records
 * each restart in the history through status()). A stopped or suspended
 * instance is left down. Containers outlive the platform: stopping it leaves
 * them running, as on Kubernetes.
 */
import { EventEmitter } from 'node:events';
import type { InstanceRouter } from '../../host/gateway.ts';
import { log } from '../../log.ts';
import { probeOne } from '../health.ts';
import { statusPage } from '../status-page.ts';
import { ODOO_PATHS } from '../../odoo/contract.ts';
import { DockerDriver, INSTANCE_LABEL } from './driver.ts';

/** What the host did about one container's `die` (emitted as 'die' on `events`, for tests and logs). */
export type DieOutcome = { instanceId: string; outcome: 'restarted' | 'left down' | 'failed'; delayMs: number };

export type DockerRuntimeHost = { router: InstanceRouter; events: EventEmitter; stop(): Promise<void> };

/** The kubelet's restart backoff: 10 s doubling to 5 min, forgotten after 10 min of running. */
const BACKOFF_FIRST_MS = 10_000;
const BACKOFF_MAX_MS = 300_000;
const BACKOFF_RESET_MS = 600_000;

/** How long to wait before the next restart when `attempts` were made since the container last ran 10 min: none the first time, so one kill costs the customer seconds. */
export function restartDelay(attempts: number): number {
  return attempts === 0 ? 0 : Math.min(BACKOFF_FIRST_MS * 2 ** (attempts - 1), BACKOFF_MAX_MS);
}

/** Starts routing, reconciling and watching for `driver`'s instances. */
export async function startDockerRuntime(driver: DockerDriver): Promise<DockerRuntimeHost> {
  await driver.docker.ping().catch((err) => {
    throw new Error(`RUNTIME_DRIVER=docker but Docker is not answering (${(err as Error).message}): start dockerd or set DOCKER_HOST`);
  });
  const back = await driver.reconcileAll();
  if (back.length) log.info({ instances: back }, 'docker: instances brought back');

  /** subdomain → instance id, rebuilt from the state files when a name is unknown (at most once a second). */
  let bySub = new Map<string, string>();
  let scanned = 0;
  const lookup = async (sub: string) => {
    if (!bySub.has(sub) && Date.now() - scanned > 1000) {
      scanned = Date.now();
      bySub = new Map((await driver.listStates()).map(({ id, state }) => [state.subdomain, id]));
    }
    return bySub.get(sub);
  };
  /** Container start time once its Odoo answered, per instance: routed to Odoo without probing again. */
  const ready = new Map<string, string>();

  const router: InstanceRouter = async (sub) => {
    const id = await lookup(sub);
    if (!id) return undefined;
    const st = await driver.readState(id);
    if (!st) {
      bySub.delete(sub);
      return undefined;
    }
    if (st.suspended) return { page: statusPage('suspended', st.name) };
    if (st.replicas === 0) return { page: statusPage('stopped', st.name) };
    const info = await driver.inspect(id).catch(() => undefined);
    if (!info?.State.Running || info.State.Restarting) return { page: statusPage('failed', st.name) };
    if (ready.get(id) !== info.State.StartedAt) {
      if (!(await probeOne(`http://127.0.0.1:${st.httpPort}${ODOO_PATHS.liveness}`, 1000)).ok) return { page: statusPage('starting', st.name) };
      ready.set(id, info.State.StartedAt);
    }
    return { port: st.httpPort };
  };

  const events = new EventEmitter();
  /** Restarts done per instance and when the last was, for the backoff; pending restarts. */
  const restarts = new Map<string, { attempts: number; lastAt: number }>();
  const pending = new Map<string, NodeJS.Timeout>();
  const converge = (id: string, containerId: string, diedAtMs: number) => {
    const r = restarts.get(id) ?? { attempts: 0, lastAt: 0 };
    const attempts = Date.now() - r.lastAt > BACKOFF_RESET_MS ? 0 : r.attempts;
    const delayMs = restartDelay(attempts);
    clearTimeout(pending.get(id));
    const t = setTimeout(async () => {
      pending.delete(id);
      let outcome: DieOutcome['outcome'];
      try {
        outcome = (await driver.restartDrifted(id, containerId, diedAtMs)) ? 'restarted' : 'left down';
      } catch (err) {
        outcome = 'failed';
        log.warn({ instanceId: id, err: (err as Error).message }, 'docker: could not start the instance container again');
      }
      if (outcome === 'restarted') {
        restarts.set(id, { attempts: attempts + 1, lastAt: Date.now() });
        log.warn({ instanceId: id, attempt: attempts + 1, delayMs }, 'drift: the instance container stopped outside the platform and was started again');
      }
      events.emit('die', { instanceId: id, outcome, delayMs } satisfies DieOutcome);
    }, delayMs);
    t.unref();
    pending.set(id, t);
  };

  // The events stream: drift is seen and converged the moment it happens, not at the next probe.
  let stream: NodeJS.ReadableStream | undefined;
  let closing = false;
  /** Seconds of the last event seen: a reconnect asks from there, so a container killed meanwhile is not missed. */
  let lastTime: number | undefined;
  const watch = async () => {
    if (closing) return;
    try {
      stream = (await driver.docker.getEvents({
        ...(lastTime ? { since: lastTime } : {}),
        filters: { type: ['container'], label: [INSTANCE_LABEL], event: ['die', 'start', 'destroy'] },
      })) as NodeJS.ReadableStream;
    } catch {
      if (!closing) setTimeout(watch, 2000).unref();
      return;
    }
    let buf = '';
    stream.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void onEvent(line);
      }
    });
    stream.on('end', () => {
      if (!closing) setTimeout(watch, 1000).unref();
    });
    stream.on('error', () => {});
  };
  const onEvent = async (line: string) => {
    let ev: { Action?: string; time?: number; timeNano?: number; Actor?: { ID?: string; Attributes?: Record<string, string> } };
    try {
      ev = JSON.parse(line);
    } catch {
      return;
    }
    if (ev.time) lastTime = ev.time;
    const attrs = ev.Actor?.Attributes ?? {};
    const id = attrs[INSTANCE_LABEL];
    if (!id || attrs['app.kubernetes.io/component'] !== 'odoo') return;
    ready.delete(id);
    if (ev.Action === 'die' && ev.Actor?.ID) {
      const st = await driver.readState(id).catch(() => undefined);
      if (st?.replicas !== 1 || st.suspended) {
        // Stopped or suspended (by the platform, or before it was killed): left down, whoever stopped it.
        events.emit('die', { instanceId: id, outcome: 'left down', delayMs: 0 } satisfies DieOutcome);
        return;
      }
      converge(id, ev.Actor.ID, ev.timeNano ? ev.timeNano / 1e6 : Date.now());
    }
  };
  await watch();

  return {
    router,
    events,
    async stop() {
      closing = true;
      for (const t of pending.values()) clearTimeout(t);
      pending.clear();
      (stream as unknown as { destroy?: () => void })?.destroy?.();
    },
  };
}
