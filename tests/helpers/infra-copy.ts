/**
 * A private copy of infra/ in a temp folder, so tests can run `platform
 * render` (which rewrites infra/base/generated/) without touching the
 * repository, plus the kubectl lookup those tests skip on.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '@saasodoo/platform/config';
import { findKubectl } from '@saasodoo/platform/deploy/render';

/** Copies infra/ to a new temp folder; returns its path. */
export function copyInfra(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'saasodoo-infra-'));
  fs.cpSync(path.join(repoRoot, 'infra'), dir, { recursive: true });
  return dir;
}

/** kubectl, or undefined after saying on stderr which checks are skipped. */
export function kubectlOrSkip(what: string): string | undefined {
  const bin = findKubectl();
  if (!bin) process.stderr.write(`kubectl not found (install Debian's kubernetes-client or set KUBECTL): skipping ${what}\n`);
  return bin;
}
