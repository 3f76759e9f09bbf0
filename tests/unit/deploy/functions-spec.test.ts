/**
 * Every function's func.yaml, merged over the root defaults, is a valid
 * Knative func file (the func.yaml JSON Schema from SCHEMAS_DIR) and is
 * named after its folder: that name becomes the Knative Service name.
 */
import fs from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { functionNames, functionSpec } from '@saasodoo/platform/funcspec';
import { schemaFile } from '../../helpers/schemas.ts';

/** The schema is draft-04; Ajv 8 reads it once the draft markers are dropped (no draft-04-only keywords are used). */
function stripDraft(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(stripDraft);
  if (!node || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([k]) => k !== '$schema')
      .map(([k, v]) => [k, stripDraft(v)]),
  );
}

const file = schemaFile('knative-func-func_yaml-schema.json');

describe('functions/*/func.yaml', () => {
  const names = functionNames();

  it('exist', () => {
    expect(names.length).toBeGreaterThan(0);
  });

  it.each(names)('%s: name equals its folder', (name) => {
    expect(functionSpec(name).name).toBe(name);
  });

  it.skipIf(!file)('validate against the knative func.yaml schema (merged with the root defaults)', () => {
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
    const validate = ajv.compile(stripDraft(JSON.parse(fs.readFileSync(file!, 'utf8'))) as object);
    const problems = names.flatMap((n) => {
      const spec = functionSpec(n);
      return validate(spec) ? [] : [`${n}: ${(validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`).join('; ')}`];
    });
    expect(problems).toEqual([]);
  });
});
