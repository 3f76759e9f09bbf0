/**
 * Vitest global setup for the unit suite: brings the `platform` CLI bundle
 * (platform/bin/host-bundle.mjs) up to date before any file runs it, and
 * writes SvelteKit's generated tsconfig (`svelte-kit sync`), which the
 * portal's tsconfig extends: unit tests import the portal's pure modules, and
 * in a fresh clone nothing has built the portal yet.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '@saasodoo/platform/config';
import { hostBundle } from '@saasodoo/platform/bin/host-bundle';

export default async function setup(): Promise<void> {
  const web = path.join(repoRoot, 'web');
  await Promise.all([hostBundle('cli', 'platform/src/cli.ts'), promisify(execFile)(path.join(repoRoot, 'node_modules/.bin/svelte-kit'), ['sync'], { cwd: web })]);
}
