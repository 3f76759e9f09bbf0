/**
 * The host side of the docker driver (`npm start` with RUNTIME_DRIVER=docker):
 * routes `<subdomain>.localhost` for the gateway to the instance's loopback
 * port (or its stopped / suspended / starting page), brings back instances
 * that should run when the platform starts, and follows the Engine's events
 * stream so a container that dies outside the platform is logged as drift at
 * once (health-probe then sees it through status()). Containers outlive the
 * platform: stopping it leaves them running, as on Kubernetes.
 */
import type { InstanceRouter } from '../../host/gateway.ts';
import { log } from '../../log.ts';
import { probeOne } from '../health.ts';
import { statusPage } from '../status-page.ts';
import { ODOO_PATHS } from '../../odoo/contract.ts';
import { DockerDriver, INSTANCE_LABEL } from './driver.ts';

export type DockerRuntimeHost = { router: InstanceRouter; stop(): Promise<void> };

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

  // The events stream: drift is visible the moment it happens, not at the next probe.
  let stream: NodeJS.ReadableStream | undefined;
  let closing = false;
  const watch = async () => {
    if (closing) return;
    try {
      stream = (await driver.docker.getEvents({ filters: { type: ['container'], label: [INSTANCE_LABEL], event: ['die', 'start', 'destroy'] } })) as NodeJS.ReadableStream;
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
    let ev: { Action?: string; Actor?: { Attributes?: Record<string, string> } };
    try {
      ev = JSON.parse(line);
    } catch {
      return;
    }
    const attrs = ev.Actor?.Attributes ?? {};
    const id = attrs[INSTANCE_LABEL];
    if (!id || attrs['app.kubernetes.io/component'] !== 'odoo') return;
    ready.delete(id);
    if (ev.Action === 'die') {
      const st = await driver.readState(id);
      if (st?.replicas === 1 && !st.suspended) log.warn({ instanceId: id, exitCode: attrs.exitCode }, 'drift: the instance container died outside the platform');
    }
  };
  await watch();

  return {
    router,
    async stop() {
      closing = true;
      (stream as unknown as { destroy?: () => void })?.destroy?.();
    },
  };
}
