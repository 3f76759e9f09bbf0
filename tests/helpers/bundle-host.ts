/**
 * Vitest global setup for the unit suite: brings the `platform` CLI bundle
 * (platform/bin/host-bundle.mjs) up to date before any file runs it.
 */
import { hostBundle } from '@saasodoo/platform/bin/host-bundle';

export default async function setup(): Promise<void> {
  await hostBundle('cli', 'platform/src/cli.ts');
}
