/**
 * Host service for RUNTIME_DRIVER=docker (`platform up`, phase 'before', so
 * instances are back before functions start): hands the gateway its
 * `<subdomain>.localhost` router. Functions reach Docker themselves.
 * Functions need DATA_DIR on this machine too (instance folders, state).
 */
import type { HostService } from '../../host/host-service.ts';

export const dockerRuntimeService: HostService = {
  name: 'runtime',
  phase: 'before',
  enabled: (c) => c.RUNTIME_DRIVER === 'docker',
  async start(ctx) {
    // Loaded only when chosen: dockerode is not needed by the other drivers.
    const { DockerDriver } = await import('./driver.ts');
    const { startDockerRuntime } = await import('./host.ts');
    const { bringUpLocalDedicated } = await import('../dedicated-local.ts');
    const { log } = await import('../../log.ts');
    const driver = DockerDriver.fromConfig();
    // A bridge network's address must exist before the dedicated servers listening on it start.
    await driver.ensureNetwork().catch((err) => log.warn({ reason: (err as Error).message }, 'the docker network is not ready: dedicated servers may answer on loopback only'));
    // Premium instances' own database servers (on this machine with this driver too) before the instances.
    const stopServers = await bringUpLocalDedicated(ctx.config.dataDir);
    const rt = await startDockerRuntime(driver);
    ctx.setInstanceRouter(rt.router);
    const stop = async () => {
      await rt.stop();
      await stopServers();
    };
    return { stop, endpoint: `docker (${ctx.config.DOCKER_HOST ?? 'unix:///var/run/docker.sock'}), image ${ctx.config.ODOO_IMAGE}, network ${ctx.config.DOCKER_NETWORK}` };
  },
};
