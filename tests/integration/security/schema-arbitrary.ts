/**
 * fast-check arbitraries derived from a function's zod input schema.
 * zod-fast-check does not support zod 4, so the schema goes through zod 4's
 * own `z.toJSONSchema` and a small JSON Schema → arbitrary mapping covers
 * what our schemas use (objects, strings with length/pattern/format, enums,
 * consts, booleans, numbers, oneOf/anyOf). `inputFor` mixes valid inputs,
 * inputs with one field wrong or missing or extra, and raw JSON garbage.
 *
 * The characters that broke inputs before (issue 16: NUL and other
 * controls, lone surrogates, right-to-left and other format marks,
 * combining marks, very long strings) are mixed in deliberately, not left to
 * a lucky seed: in a valid input with one field made hostile (so it gets
 * past the other fields to the handler and the database), in the nasty
 * strings that replace a field, and in query values.
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
  "' OR '1'='1' --",
  '"; DROP TABLE users; --',
  '$(reboot)',
  '`id`',
  '; rm -rf / #',
  '| cat /etc/passwd',
  '../../../../etc/passwd',
  '%00',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff\ud800',
  '\u202e\u0644\u0627',
  '\u200b\ufeff',
  '🧨'.repeat(50),
  'e\u0301'.repeat(30),
  '<script>alert(1)</script>',
  '{{7*7}}',
  '${7*7}',
  '%s%s%s%n',
  'null',
  'undefined',
  'NaN',
  '-1',
  '1e309',
  ' ',
  '\n\r\t',
  'x'.repeat(5000),
  '__proto__',
  'constructor',
  'A'.repeat(43),
  '00000000-0000-0000-0000-000000000000',
];

/** Single characters a text field must refuse or survive: C0/DEL/C1 controls, line breaks, lone surrogates, bidi and other format marks, combining marks, noncharacters. */
export const HOSTILE_CHARS = [
  '\u0000',
  '\u0001',
  '\u0007',
  '\u0008',
  '\u000b',
  '\u000c',
  '\u001b',
  '\u001f',
  '\u007f',
  '\u0080',
  '\u0085',
  '\u009f',
  '\t',
  '\n',
  '\r',
  '\r\n',
  '\u2028',
  '\u2029',
  '\ud800',
  '\udbff',
  '\udc00',
  '\udfff',
  '\u200e',
  '\u200f',
  '\u202a',
  '\u202e',
  '\u2066',
  '\u2069',
  '\u061c',
  '\u200b',
  '\u200d',
  '\ufeff',
  '\u0301',
  'e\u0301',
  '\u0627\u0644\u0639\u0631\u0628\u064a\u0629',
  '\ufffe',
  '\uffff',
  '\ufffd',
  '🧨',
  '👩\u200d👩\u200d👧',
];
// NUL is what PostgreSQL refuses outright (a 500 before issue 16): one pick in four.
const hostileChar = fc.oneof({ weight: 1, arbitrary: fc.constant('\u0000') }, { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_CHARS) });

/** Ordinary text with hostile characters mixed in (about one in four). */
const hostileText = (minLength: number, maxLength: number) =>
  fc
    .array(fc.oneof({ weight: 3, arbitrary: fc.string({ minLength: 1, maxLength: 1, unit: 'grapheme' }) }, { weight: 1, arbitrary: hostileChar }), { minLength, maxLength })
    .map((parts) => parts.join(''));

/** Very long strings, 1,000 to 20,000 repetitions of one unit (hostile or not), built without generating each unit. */
const longText = fc.tuple(fc.oneof(fc.constantFrom('a', 'é', 'e\u0301', ' ', '%'), hostileChar), fc.integer({ min: 1000, max: 20_000 })).map(([unit, n]) => unit.repeat(n));

/** `v` with `c` inserted at `at` (modulo its length). */
const insertAt = (v: string, c: string, at: number) => {
  const i = v.length ? at % (v.length + 1) : 0;
  return v.slice(0, i) + c + v.slice(i);
};

/** Edits that make one string hostile: a hostile character inserted into it, or replaced by hostile or very long text. */
const hostileEdit: fc.Arbitrary<(v: string) => string> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.tuple(hostileChar, fc.nat()).map(
      ([c, at]) =>
        (v: string) =>
          insertAt(v, c, at),
    ),
  },
  { weight: 1, arbitrary: hostileText(1, 40).map((t) => () => t) },
  { weight: 1, arbitrary: longText.map((t) => () => t) },
);

/**
 * Well-formed values for fields whose rules JSON Schema cannot carry (zod
 * refinements), so valid inputs get past them and a hostile field reaches
 * the handler and the database.
 */
const FIELD_VALUES: Record<string, fc.Arbitrary<string>> = {
  password: fc.stringMatching(/^[a-z]{6}( [a-z]{4,8}){2,4}$/),
  newPassword: fc.stringMatching(/^[a-z]{6}( [a-z]{4,8}){2,4}$/),
  subdomain: fc.stringMatching(/^fz[a-z0-9]{4,20}$/),
  plan: fc.constantFrom('basic-monthly', 'standard-monthly', 'basic-immediate'),
  // fast-check's addresses are RFC-valid but mostly not what the platform accepts (zod's stricter pattern)
  email: fc.stringMatching(/^[a-z]{2,10}(\.[a-z0-9]{1,8})?@example\.(test|com)$/),
};

const nasty = fc.oneof(fc.constantFrom(...NASTY_STRINGS), hostileText(1, 20), longText);
// `__proto__` keys are left to the raw garbage cases (fastify refuses them before our code: one known answer).
const anyJson = fc.oneof(
  { depthSize: 'small' },
  fc.jsonValue({ maxDepth: 3 }).filter((v) => !JSON.stringify(v).includes('"__proto__"')),
  nasty,
  fc.constantFrom(null, true, 0, -1, 1.5, [], {}, 1e308),
);

/** The JSON Schema (input side) of a zod schema; transforms and refinements become `any`. */
export function jsonSchemaOf(schema: ZodType): JsonSchema {
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
}

/** A string the schema's format, pattern and length accept, as far as JSON Schema says. */
function wellFormedString(s: JsonSchema, key?: string): fc.Arbitrary<string> {
  const known = key ? FIELD_VALUES[key] : undefined;
  return known ? fc.oneof({ weight: 3, arbitrary: known }, { weight: 1, arbitrary: fromSchema(s) }) : fromSchema(s);
}

function fromSchema(s: JsonSchema): fc.Arbitrary<string> {
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
export function validArb(s: JsonSchema, key?: string): fc.Arbitrary<unknown> {
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum) return fc.constantFrom(...s.enum);
  const alts = s.oneOf ?? s.anyOf;
  if (alts) return fc.oneof(...alts.map((a) => validArb(a, key)));
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'object': {
      const props = s.properties ?? {};
      const required = new Set(s.required ?? []);
      const rec: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [k, v] of Object.entries(props)) rec[k] = validArb(v, k);
      return fc.record(rec, { requiredKeys: [...required].filter((k) => k in props) });
    }
    case 'string':
      return wellFormedString(s, key);
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
 * Inputs for a body or query schema: valid ones, valid ones with one field
 * made hostile (a control character, lone surrogate, bidi mark... inserted,
 * or hostile or very long text: the other fields stay valid, so it reaches
 * the handler), valid ones with one field replaced by garbage, dropped, or an
 * unknown field added, and plain garbage of any JSON type.
 */
export function inputFor(schema: ZodType): fc.Arbitrary<unknown> {
  const js = jsonSchemaOf(schema);
  const valid = validArb(js);
  const keys = knownKeys(js);
  const obj = valid.filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v));
  const mutations: fc.WeightedArbitrary<unknown>[] = [
    { weight: 2, arbitrary: valid },
    { weight: 1, arbitrary: anyJson },
  ];
  if (keys.length) {
    const key = fc.constantFrom(...keys);
    mutations.push(
      { weight: 3, arbitrary: fc.tuple(obj, key, hostileEdit).map(([v, k, edit]) => ({ ...v, [k]: edit(typeof v[k] === 'string' ? v[k] : 'x') })) },
      { weight: 1, arbitrary: fc.tuple(obj, key, anyJson).map(([v, k, bad]) => ({ ...v, [k]: bad })) },
      { weight: 1, arbitrary: fc.tuple(obj, key).map(([v, k]) => Object.fromEntries(Object.entries(v).filter(([name]) => name !== k))) },
      { weight: 1, arbitrary: fc.tuple(obj, key, nasty).map(([v, k, str]) => ({ ...v, [k]: str })) },
    );
  }
  mutations.push({
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.dictionary(
          fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'),
          anyJson,
          { maxKeys: 3 },
        ),
        fc.constantFrom('extra', 'role', 'customerId', 'isAdmin'),
        anyJson,
      )
      .map(([v, k, x]) => ({ ...v, [k]: x })),
  });
  return fc.oneof(...mutations);
}

/** A query string for a GET route: each value a string (valid, nasty or random), arrays for repeated keys now and then. */
export function queryFor(schema: ZodType): fc.Arbitrary<string> {
  const js = jsonSchemaOf(schema);
  const keys = [...knownKeys(js), 'extra'];
  const value = (k: string) => {
    const p = js.properties?.[k];
    return fc.oneof(p ? validArb(p).map(String) : fc.string(), nasty, hostileText(0, 30));
  };
  return fc
    .array(
      fc.constantFrom(...keys).chain((k) => value(k).map((v) => [k, v] as [string, string])),
      { maxLength: 4 },
    )
    .map((pairs) => new URLSearchParams(pairs).toString());
}

/**
 * Up to `n` inputs the zod schema accepts, of different shapes (one per
 * branch of a union where the draws reach it), drawn with `seed`.
 */
export async function validSamples(schema: ZodType, seed: number, n = 4): Promise<Record<string, unknown>[]> {
  const out = new Map<string, Record<string, unknown>>();
  for (const v of fc.sample(validArb(jsonSchemaOf(schema)), { numRuns: 400, seed })) {
    // Async: a schema may have async refinements (the password policy loads its dictionaries on first use).
    if (typeof v !== 'object' || v === null || Array.isArray(v) || !(await schema.safeParseAsync(v)).success) continue;
    const shape = Object.keys(v).sort().join(',') + String((v as Record<string, unknown>).action ?? '');
    if (!out.has(shape)) out.set(shape, v as Record<string, unknown>);
    if (out.size >= n) break;
  }
  return [...out.values()];
}
