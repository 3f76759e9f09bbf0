/**
 * Vitest global setup for the suites that start functions: brings every
 * function bundle up to date once, in one esbuild pass, before the files
 * run, so parallel files never each rebuild the same stale bundles (the host
 * still checks them on every start: this only takes the work off the files).
 */
import { functionBundles } from '@saasodoo/platform/host/bundles';
import { functionNames } from '@saasodoo/platform/funcspec';

export default async function setup(): Promise<void> {
  await functionBundles(functionNames());
}
