/**
 * Host service that runs the local runtime daemon with `platform up` (phase
 * 'before', so instances are back before functions start) and hands its
 * router to the gateway for `<subdomain>.localhost`.
 */
import type { HostService } from '../../host/host-service.ts';
import { startLocalRuntime } from './daemon.ts';
import { localRuntimeToken } from './driver.ts';
import { bringUpLocalDedicated } from '../dedicated-local.ts';

export const localRuntimeService: HostService = {
  name: 'runtime',
  phase: 'before',
  enabled: (c) => c.RUNTIME_DRIVER === 'local',
  async start(ctx) {
    const c = ctx.config;
    // Premium instances' own database servers first: the instances coming back need them (after a reboot too).
    const stopServers = await bringUpLocalDedicated(c.dataDir);
    const rt = await startLocalRuntime({
      port: c.LOCAL_RUNTIME_PORT,
      dataDir: c.dataDir,
      token: localRuntimeToken(),
      portBase: c.LOCAL_INSTANCE_PORT_BASE,
      odooCommand: c.ODOO_COMMAND,
      baseDomain: c.BASE_DOMAIN,
      gatewayPort: c.GATEWAY_PORT,
      scheme: c.INSTANCE_URL_SCHEME,
      readyTimeoutMs: c.PROVISION_READY_TIMEOUT * 1000,
    });
    ctx.functionEnv.LOCAL_RUNTIME_PORT = String(rt.port);
    ctx.setInstanceRouter(rt.router);
    return {
      stop: async () => {
        await rt.stop();
        await stopServers();
      },
      endpoint: rt.url,
    };
  },
};
