/**
 * Local secrets. In production every secret comes from the environment (a
 * Kubernetes Secret). On a laptop, a secret not set in the environment is
 * generated once into DATA_DIR/secrets.json (mode 600) and reused, so
 * `npm start` needs no setup and nothing secret is ever printed.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { config } from './config.ts';

function file(): string {
  return path.join(config().dataDir, 'secrets.json');
}

function read(): Record<string, string> {
  try {
    return JSON.parse(fs.readFileSync(file(), 'utf8'));
  } catch {
    return {};
  }
}

/**
 * The secret `name`: from env var `envName` when set, else from (or newly
 * generated into) the local secrets file. Concurrent processes may race to
 * generate: the file is written with an exclusive lock-by-rename and re-read.
 */
export function localSecret(name: string, envValue: string | undefined, generate = () => randomBytes(24).toString('base64url')): string {
  if (envValue) return envValue;
  const existing = read()[name];
  if (existing) return existing;
  fs.mkdirSync(path.dirname(file()), { recursive: true, mode: 0o700 });
  const lock = `${file()}.lock`;
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      fs.mkdirSync(lock);
    } catch {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      continue;
    }
    try {
      const current = read();
      if (!current[name]) {
        current[name] = generate();
        const tmp = `${file()}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, JSON.stringify(current, null, 2), { mode: 0o600 });
        fs.renameSync(tmp, file());
      }
      return current[name];
    } finally {
      fs.rmdirSync(lock);
    }
  }
  throw new Error(`Could not lock ${file()}: remove ${lock} if no platform process is running`);
}
