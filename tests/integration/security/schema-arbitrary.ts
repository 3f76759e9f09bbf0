/**
 * fast-check arbitraries derived from a function's zod input schema.
 * zod-fast-check does not support zod 4, so the schema goes through zod 4's
 * own `z.toJSONSchema` and a small JSON Schema → arbitrary mapping covers
 * what our schemas use (objects, strings with length/pattern/format, enums,
 * consts, booleans, numbers, oneOf/anyOf). `inputFor` mixes valid inputs,
 * inputs with one field wrong or missing or extra, and raw JSON garbage.
 */
import fc from 'fast-check';
import { z, type ZodType } from 'zod';

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  const?: unknown;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  default?: unknown;
};

/** Strings a careless handler chokes on: SQL and shell metacharacters, odd unicode, NUL, path tricks. */
export const NASTY_STRINGS = [
  "' OR '1'='1' --", '"; DROP TABLE users; --', '$(reboot)', '`id`', '; rm -rf / #', '| cat /etc/passwd', '../../../../etc/passwd',
  '%00', '\u0000', 'a\u0000b', '\ud800', '\udfff\ud800', '\u202e\u0644\u0627', '\u200b\ufeff', '🧨'.repeat(50), 'e\u0301'.repeat(30),
  '<script>alert(1)</script>', '{{7*7}}', '${7*7}', '%s%s%s%n', 'null', 'undefined', 'NaN', '-1', '1e309', ' ', '\n\r\t',
  'x'.repeat(5000), '__proto__', 'constructor', 'A'.repeat(43), '00000000-0000-0000-0000-000000000000',
];

const nasty = fc.constantFrom(...NASTY_STRINGS);
// `__proto__` keys are left to the raw garbage cases (fastify refuses them before our code: one known answer).
const anyJson = fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 3 }).filter((v) => !JSON.stringify(v).includes('"__proto__"')), nasty, fc.constantFrom(null, true, 0, -1, 1.5, [], {}, 1e308));

/** The JSON Schema (input side) of a zod schema; transforms and refinements become `any`. */
export function jsonSchemaOf(schema: ZodType): JsonSchema {
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
}

function stringArb(s: JsonSchema): fc.Arbitrary<string> {
  if (s.format === 'uuid') return fc.uuid();
  if (s.format === 'email') return fc.emailAddress();
  if (s.pattern) {
    try {
      return fc.stringMatching(new RegExp(s.pattern)).filter((v) => v.length <= (s.maxLength ?? Infinity));
    } catch {
      /* a pattern JS cannot compile: fall through */
    }
  }
  return fc.string({ minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 40, 200), unit: 'grapheme' });
}

/** An arbitrary producing values the schema accepts (as far as JSON Schema says). */
export function validArb(s: JsonSchema): fc.Arbitrary<unknown> {
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum) return fc.constantFrom(...s.enum);
  const alts = s.oneOf ?? s.anyOf;
  if (alts) return fc.oneof(...alts.map(validArb));
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'object': {
      const props = s.properties ?? {};
      const required = new Set(s.required ?? []);
      const rec: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [k, v] of Object.entries(props)) rec[k] = validArb(v);
      return fc.record(rec, { requiredKeys: [...required].filter((k) => k in props) });
    }
    case 'string':
      return stringArb(s);
    case 'boolean':
      return fc.boolean();
    case 'integer':
      return fc.integer({ min: s.minimum ?? -1000, max: s.maximum ?? 1000 });
    case 'number':
      return fc.double({ min: s.minimum ?? -1e6, max: s.maximum ?? 1e6, noNaN: true });
    case 'array':
      return fc.array(s.items ? validArb(s.items) : anyJson, { maxLength: 5 });
    default:
      return anyJson;
  }
}

/** The property names an object schema (or any branch of it) knows. */
function knownKeys(s: JsonSchema): string[] {
  const alts = s.oneOf ?? s.anyOf ?? [s];
  return [...new Set(alts.flatMap((a) => Object.keys(a.properties ?? {})))];
}

/**
 * Inputs for a body or query schema: mostly valid ones, then valid ones with
 * one field replaced by garbage, dropped, or an unknown field added, then
 * plain garbage of any JSON type.
 */
export function inputFor(schema: ZodType): fc.Arbitrary<unknown> {
  const js = jsonSchemaOf(schema);
  const valid = validArb(js);
  const keys = knownKeys(js);
  const obj = valid.filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v));
  const mutations: fc.Arbitrary<unknown>[] = [valid, anyJson];
  if (keys.length) {
    mutations.push(
      fc.tuple(obj, fc.constantFrom(...keys), anyJson).map(([v, k, bad]) => ({ ...v, [k]: bad })),
      fc.tuple(obj, fc.constantFrom(...keys)).map(([v, k]) => Object.fromEntries(Object.entries(v).filter(([key]) => key !== k))),
      fc.tuple(obj, fc.constantFrom(...keys), nasty).map(([v, k, s]) => ({ ...v, [k]: s })),
    );
  }
  mutations.push(fc.tuple(fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'), anyJson, { maxKeys: 3 }), fc.constantFrom('extra', 'role', 'customerId', 'isAdmin'), anyJson)
    .map(([v, k, x]) => ({ ...v, [k]: x })));
  return fc.oneof(...mutations);
}

/** A query string for a GET route: each value a string (valid, nasty or random), arrays for repeated keys now and then. */
export function queryFor(schema: ZodType): fc.Arbitrary<string> {
  const js = jsonSchemaOf(schema);
  const keys = [...knownKeys(js), 'extra'];
  const value = (k: string) => {
    const p = js.properties?.[k];
    return fc.oneof(p ? validArb(p).map(String) : fc.string(), nasty, fc.string({ maxLength: 30 }));
  };
  return fc
    .array(fc.constantFrom(...keys).chain((k) => value(k).map((v) => [k, v] as [string, string])), { maxLength: 4 })
    .map((pairs) => new URLSearchParams(pairs).toString());
}
