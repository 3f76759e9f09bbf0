/**
 * Host service: runs the SMTP catcher when no real SMTP_URL is configured,
 * and points every function at it (functionEnv.SMTP_URL), so mails sent by
 * `email` during `npm start` land in DATA_DIR/mail/.
 */
import type { HostService } from '../host/host-service.ts';
import { mailDir, startMailCatcher } from './catcher.ts';

export const smtpCatcherService: HostService = {
  name: 'smtp-catcher',
  phase: 'before',
  enabled: (c) => !c.SMTP_URL,
  async start(ctx) {
    const catcher = await startMailCatcher({ port: ctx.config.SMTP_PORT, dir: mailDir(ctx.config.dataDir) });
    ctx.functionEnv.SMTP_URL = catcher.url;
    return { stop: catcher.stop, endpoint: `${catcher.url}  (mail kept in ${mailDir(ctx.config.dataDir)}, see: platform mail list)` };
  },
};
