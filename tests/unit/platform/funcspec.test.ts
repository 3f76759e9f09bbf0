import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { functionNames, functionSpec, functionsDir, mergeSpec } from '@saasodoo/platform/funcspec';

describe('func.yaml', () => {
  it('every function folder has a func.yaml whose name is the folder', () => {
    const dirs = fs
      .readdirSync(functionsDir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    expect(functionNames()).toEqual(dirs);
    for (const name of dirs) {
      expect(fs.existsSync(path.join(functionsDir, name, 'index.ts')), `${name}/index.ts`).toBe(true);
      expect(functionSpec(name).name).toBe(name);
    }
  });

  it('merges each function over the root defaults', () => {
    for (const name of functionNames()) {
      const spec = functionSpec(name);
      expect(spec.runtime).toBe('node');
      expect(spec.deploy?.healthEndpoints?.readiness).toBe('/health/readiness');
      expect(spec.deploy?.options?.scale?.min).toBeTypeOf('number');
    }
  });

  it('deep-merges objects and replaces arrays', () => {
    expect(mergeSpec({ a: { b: 1, c: 2 }, l: [1] }, { a: { c: 3 }, l: [2] })).toEqual({ a: { b: 1, c: 3 }, l: [2] });
  });
});
