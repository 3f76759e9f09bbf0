import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// unit: no services. integration: real PostgreSQL, Redis, RabbitMQ, SMTP.
// e2e: the portal in headless Chromium. Each integration file gets its own
// DB_NAMESPACE, Redis prefix and broker name (tests/helpers/setup-env.ts), so
// runs never collide. Run through npm (`npm test -- <path>`): this file lives
// in tests/ to keep the repository's top level as designed.
export default defineConfig({
  root: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'),
  test: {
    reporters: ['default', './tests/helpers/summary-reporter.ts'],
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      // Unit tests also sit beside the pure rules they test, in a function's or slice's folder.
      {
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts', 'functions/*/**/*.test.ts', 'platform/src/**/*.test.ts', 'events/**/*.test.ts'],
          exclude: ['**/node_modules/**'],
          environment: 'node',
          // One unit test runs the `platform` CLI, which runs from its bundle: build it once, up front.
          globalSetup: ['tests/helpers/bundle-host.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          globalSetup: ['tests/helpers/bundle-functions.ts'],
          setupFiles: ['tests/helpers/setup-env.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        // The Kill Bill adapter against the Kill Bill named by KILLBILL_URL (`npm run test:killbill`);
        // its tests skip, saying so, when KILLBILL_URL is unset (as in a plain `npm test`).
        test: {
          name: 'killbill',
          include: ['tests/killbill/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        // The whole platform plus headless Chromium per file. They run beside the other files (two
        // workers): a browser file mostly waits (provisioning, mail, page loads; about a quarter of a
        // core on average), so one at a time left most of the 2-core CI box idle. Their portals share
        // one build (host/portal.ts locks it).
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          globalSetup: ['tests/helpers/bundle-functions.ts'],
          setupFiles: ['tests/helpers/setup-env.ts'],
          testTimeout: 240_000,
          hookTimeout: 240_000,
        },
      },
    ],
  },
});
