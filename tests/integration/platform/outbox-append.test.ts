/**
 * appendEvent (outbox.ts): events that share no transaction with a state
 * change are group-committed. Every caller's promise resolves only once its
 * row is in the outbox; concurrent callers' rows all land, each once, with
 * the data as given; a repeated event id is stored once and both callers
 * are answered.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { closeDatabases, db } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { appendEvent } from '@saasodoo/platform/outbox';

const TYPE = 'com.saasodoo.audit.action';
const entry = (i: number) => ({ actor: 'anonymous', action: 'login', outcome: 'refused', status: 401, requestId: `r-${i}`, at: new Date().toISOString() }) as const;

beforeAll(async () => {
  await migrate({ databases: ['auth'] });
});

afterAll(async () => {
  await closeDatabases();
  await dropNamespace().catch(() => {});
});

it('stores every one of 600 concurrent events once, each resolved only after its row is there', async () => {
  const ids = Array.from({ length: 600 }, () => randomUUID());
  const seen: boolean[] = [];
  await Promise.all(
    ids.map(async (id, i) => {
      await appendEvent('auth', TYPE, entry(i), { id });
      const row = await db('auth').oneOrNone<{ data: { requestId: string } }>('SELECT data FROM outbox WHERE id = $1', [id]);
      seen[i] = row?.data.requestId === `r-${i}`;
    }),
  );
  expect(seen.filter(Boolean)).toHaveLength(600);
  const n = await db('auth').one<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE id = ANY($1::uuid[])', [ids]);
  expect(n.n).toBe(600);
});

it('stores a repeated event id once and answers both callers', async () => {
  const id = randomUUID();
  const r = await Promise.all([appendEvent('auth', TYPE, entry(1), { id }), appendEvent('auth', TYPE, entry(1), { id })]);
  expect(r).toEqual([id, id]);
  expect((await db('auth').one<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE id = $1', [id])).n).toBe(1);
});

it('refuses data the catalogue refuses before writing anything', async () => {
  expect(() => appendEvent('auth', TYPE, { actor: 'nobody' })).toThrow();
});
