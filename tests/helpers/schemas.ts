/**
 * Where the real schemas (Kill Bill XSDs, func.yaml JSON Schema, CRDs) are:
 * SCHEMAS_DIR, else ../shared/reference/schemas beside the repo. They are
 * never copied into the repo; checks that need them skip, saying so, when
 * they are absent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '@saasodoo/platform/config';

export const schemasDir = process.env.SCHEMAS_DIR ?? path.resolve(repoRoot, '../shared/reference/schemas');

/** Absolute path of a schema file, or undefined (with a note on stderr) when it is absent. */
export function schemaFile(name: string): string | undefined {
  const file = path.join(schemasDir, name);
  if (fs.existsSync(file)) return file;
  process.stderr.write(`schema ${name} not found in ${schemasDir}: the check that needs it is skipped\n`);
  return undefined;
}
