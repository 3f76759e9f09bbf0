/**
 * Vitest global setup for the suites that start functions or the host:
 * brings every function bundle and the host bundles (the `platform` CLI,
 * the child-process platform) up to date once, before the files run, so
 * parallel files never each rebuild the same stale bundles (every start
 * still checks them: this only takes the work off the files).
 */
import { hostBundle } from '@saasodoo/platform/bin/host-bundle';
import { functionBundles } from '@saasodoo/platform/host/bundles';
import { functionNames } from '@saasodoo/platform/funcspec';

export default async function setup(): Promise<void> {
  await functionBundles(functionNames());
  await hostBundle('cli', 'platform/src/cli.ts');
  await hostBundle('platform-child', 'tests/helpers/platform-child.ts');
}
