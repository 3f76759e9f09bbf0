/**
 * Child-process entry of startPlatformProcess (tests/helpers/platform.ts)
 * and the footprint bench: starts the host the way `npm start` does, says
 * so on stdout, stops on SIGTERM. It runs from an esbuild bundle
 * (platform/bin/host-bundle.mjs), as `npm start` does, not under tsx.
 */
import { up } from '@saasodoo/platform/host/up';

const READY = 'PLATFORM_READY '; // what tests/helpers/platform.ts waits for

const list = (v?: string) => (v ? v.split(',').filter(Boolean) : undefined);

if (process.env.PLATFORM_CHILD === '1') {
  up({ quiet: true, skip: list(process.env.PLATFORM_SKIP), only: list(process.env.PLATFORM_ONLY) }).then(
    (host) => {
      process.stdout.write(`${READY}${JSON.stringify({ pid: process.pid })}\n`);
      const stop = () => host.stop().finally(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    },
    (err) => {
      process.stderr.write(`platform failed to start: ${err?.stack ?? err}\n`);
      process.exit(1);
    },
  );
}
