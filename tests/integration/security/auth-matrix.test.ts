/**
 * Auth matrix (issue 11, SPEC 12): every HTTP function × {anonymous, another
 * customer, owner, admin} against the resources of one tenant (Alice): an
 * instance, a backup link, a Kill Bill subscription and a session. Each cell
 * checks the status and that nothing of Alice's leaks to a caller who may
 * not see it. The function list comes from functions/ and each module's
 * route table, so a new HTTP function fails here until it has a row, and
 * every protected route is checked for 401 without a token (and with a
 * malformed or logged-out one) automatically.
 *
 * Issue 15 added: the operator routes (/_platform/*) and the event-only
 * functions reached from outside through the gateway (404 for everyone),
 * stop/delete/backup by another customer, another customer (or an admin)
 * calling billing's startSubscription, restoring one's own instance from
 * another tenant's backup id, and the cross-tenant calls fired in parallel.
 */
import { randomUUID } from 'node:crypto';
import { functionNames, functionSpec } from '@saasodoo/platform/funcspec';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { db } from '@saasodoo/platform/db/index';
import { createTestUser, endTestSession, loginTestUser, type TestUser } from '../../helpers/auth.ts';
import { startPlatform, type Platform } from '../../helpers/platform.ts';
import { httpFunctionNames, routeTable } from './http-functions.ts';

type Who = 'anonymous' | 'other' | 'owner' | 'admin';
// Owner last: a few owner cells change Alice's resources (cancel, revoke).
const WHO: Who[] = ['anonymous', 'other', 'admin', 'owner'];

/** Alice's resources, filled in beforeAll. */
type Fixture = {
  instanceId: string;
  subdomain: string;
  subscriptionId: string;
  backupId: string;
  backupToken: string;
  spareSessionId: string;
  /** Bob's own instance (stopped, so a restore is allowed) and a backup of it still running. */
  bobInstanceId: string;
  bobPendingBackupId: string;
};

/** What a cell expects: an exact status, `ok` (2xx), or `allowed` (past auth: not 401/403/404, not 5xx). */
type Expect = number | 'ok' | 'allowed';

type Call = {
  method: 'GET' | 'POST';
  query?: (f: Fixture) => Record<string, string>;
  body?: (f: Fixture) => unknown;
  /** Send no Authorization even for a logged-in caller (the call's only credential is in the request). */
  noBearer?: boolean;
  /** A fresh session per caller (calls that end the session they are made with). */
  freshSession?: boolean;
  /** Per caller; a caller left out is not run (a call that would change Alice's resources for the rows after it). */
  expect: Partial<Record<Who, Expect>>;
  /** The callers allowed to see Alice's data in the answer. */
  maySee?: Who[];
  /** Extra check on the answer. */
  check?: (who: Who, status: number, body: any, f: Fixture) => void;
};

const A = (anonymous: Expect, other: Expect, owner: Expect, admin: Expect) => ({ anonymous, other, owner, admin });
/** Only the callers who must be refused (the owner's and admin's cells are covered by the instance suites). */
const REFUSED = { anonymous: 401, other: 404 } as const;

/** One row per HTTP function: the calls that matter for tenancy and roles. */
const MATRIX: Record<string, Record<string, Call>> = {
  account: {
    'GET own profile': {
      method: 'GET',
      expect: A(401, 200, 200, 200),
      maySee: ['owner'],
      check: (who, _s, b) => {
        if (who !== 'anonymous') expect(b.profile.email).toBe(users[who].email);
      },
    },
    'revoke Alice’s session': {
      method: 'POST',
      body: (f) => ({ action: 'revokeSession', sessionId: f.spareSessionId }),
      expect: A(401, 404, 200, 404),
      maySee: ['owner'],
    },
  },
  'audit-log': {
    'GET own activity': {
      method: 'GET',
      expect: A(401, 200, 200, 200),
      maySee: ['owner', 'admin'],
      check: (who, _s, b) => {
        if (who === 'other') for (const e of b.items) expect(e.customerId).toBe(users.other.userId);
      },
    },
    'GET Alice’s activity by her id': {
      method: 'GET',
      query: () => ({ customerId: users.owner.userId }),
      expect: A(401, 403, 200, 200),
      maySee: ['owner', 'admin'],
    },
  },
  'backup-download': {
    'Alice’s link tampered (other instance)': {
      method: 'GET',
      noBearer: true,
      query: (f) => ({ token: tamper(f.backupToken) }),
      expect: A(401, 401, 401, 401),
    },
    'Alice’s valid link (the link is the credential)': {
      // The backup has no files in this suite: past the signature check the answer is 404 for everyone alike.
      method: 'GET',
      noBearer: true,
      query: (f) => ({ token: f.backupToken }),
      expect: A(404, 404, 404, 404),
    },
  },
  billing: {
    'GET own summary': {
      method: 'GET',
      expect: A(401, 200, 200, 200),
      maySee: ['owner'],
      check: (who, _s, b, f) => {
        if (who === 'owner') expect(JSON.stringify(b)).toContain(f.subscriptionId);
      },
    },
    'change plan of Alice’s subscription (to its own plan)': {
      method: 'POST',
      body: (f) => ({ action: 'changePlan', subscriptionId: f.subscriptionId, plan: 'basic-immediate' }),
      expect: A(401, 404, 409, 404),
      maySee: ['owner'],
    },
    'startSubscription for Alice’s instance': {
      // The owner's own instance: 200 while it waits for its subscription (the same one back), 409 once it is past that.
      method: 'POST',
      body: (f) => ({ action: 'startSubscription', instanceId: f.instanceId, plan: 'basic-immediate', trial: false }),
      expect: A(401, 404, 'allowed', 404),
      maySee: ['owner'],
    },
    'startSubscription for an id that is no instance': {
      method: 'POST',
      body: () => ({ action: 'startSubscription', instanceId: randomUUID(), plan: 'basic-immediate', trial: false }),
      expect: A(401, 404, 404, 404),
    },
    'open a staging add-on on Alice’s subscription': {
      // Another customer finds no subscription of theirs for the instance; past that, Basic offers no add-on.
      method: 'POST',
      body: (f) => ({ action: 'startStagingAddOn', instanceId: f.instanceId, stagingId: randomUUID() }),
      expect: A(401, 404, 400, 400),
    },
    'cancel Alice’s subscription': {
      // Admins act for any tenant (instance-action delete by an admin cancels through here). The admin and
      // owner cells run last (ordered below) and cancel at end of term: harmless for the other rows.
      method: 'POST',
      body: (f) => ({ action: 'cancel', subscriptionId: f.subscriptionId }),
      expect: A(401, 404, 'allowed', 'allowed'),
      maySee: ['owner', 'admin'],
    },
  },
  staging: {
    // Alice's plan (Basic) offers no staging: past auth the owner and an operator get the plan's 400.
    'make a staging copy of Alice’s instance': {
      method: 'POST',
      body: (f) => ({ action: 'create', id: f.instanceId }),
      expect: A(401, 404, 400, 400),
      maySee: ['owner', 'admin'],
    },
    'refresh Alice’s instance (not a copy)': { method: 'POST', body: (f) => ({ action: 'refresh', id: f.instanceId }), expect: A(401, 404, 400, 400) },
  },
  'dead-letters': {
    'GET list (admins only)': { method: 'GET', expect: A(401, 403, 403, 200) },
    'POST replay (admins only)': { method: 'POST', body: () => ({ trigger: 'no-such-trigger' }), expect: A(401, 403, 403, 400) },
  },
  domains: {
    'GET Alice’s custom domains': {
      method: 'GET',
      query: (f) => ({ instanceId: f.instanceId }),
      expect: A(401, 404, 200, 200),
      maySee: ['owner', 'admin'],
    },
    'add a domain to Alice’s instance': {
      method: 'POST',
      body: (f) => ({ action: 'add', instanceId: f.instanceId, domain: 'matrix.example.test' }),
      expect: REFUSED,
    },
  },
  'instance-action': {
    'start Alice’s instance': {
      method: 'POST',
      body: (f) => ({ id: f.instanceId, action: 'start' }),
      expect: A(401, 404, 'allowed', 'allowed'),
      maySee: ['owner', 'admin'],
    },
    'retry Alice’s instance (admins only)': {
      method: 'POST',
      body: (f) => ({ id: f.instanceId, action: 'retry' }),
      expect: A(401, 403, 403, 'allowed'),
      maySee: ['admin'],
    },
    'restore Alice’s instance from her backup': {
      method: 'POST',
      body: (f) => ({ id: f.instanceId, action: 'restore', backupId: f.backupId }),
      expect: A(401, 404, 'allowed', 'allowed'),
      maySee: ['owner', 'admin'],
    },
    'stop Alice’s instance': { method: 'POST', body: (f) => ({ id: f.instanceId, action: 'stop' }), expect: REFUSED },
    'back up Alice’s instance': { method: 'POST', body: (f) => ({ id: f.instanceId, action: 'backup' }), expect: REFUSED },
    'delete Alice’s instance': { method: 'POST', body: (f) => ({ id: f.instanceId, action: 'delete' }), expect: REFUSED },
    'restore Bob’s instance from Alice’s backup id': {
      // Bob's own instance is his to restore (a backup of his own is found: 409, it is still running); Alice's backup id is no backup of it.
      method: 'POST',
      body: (f) => ({ id: f.bobInstanceId, action: 'restore', backupId: f.backupId }),
      expect: A(401, 404, 404, 404),
    },
    'restore Bob’s instance from his own unfinished backup (control)': {
      method: 'POST',
      body: (f) => ({ id: f.bobInstanceId, action: 'restore', backupId: f.bobPendingBackupId }),
      expect: A(401, 409, 404, 409),
    },
    // The Odoo password is the customer's alone: an admin may not set one (and then be shown it).
    'new Odoo password for Alice’s instance (owner only)': {
      method: 'POST',
      body: (f) => ({ id: f.instanceId, action: 'reset_odoo_password' }),
      expect: A(401, 404, 'allowed', 403),
      maySee: ['owner'],
    },
  },
  instances: {
    'GET own list': {
      method: 'GET',
      expect: A(401, 200, 200, 200),
      maySee: ['owner'],
      check: (who, _s, b, f) => {
        if (who === 'owner') expect(b.items.map((i: { id: string }) => i.id)).toContain(f.instanceId);
      },
    },
    'GET Alice’s instance': { method: 'GET', query: (f) => ({ id: f.instanceId }), expect: A(401, 404, 200, 200), maySee: ['owner', 'admin'] },
    'GET every tenant (admins only)': {
      method: 'GET',
      query: () => ({ all: 'true' }),
      expect: A(401, 403, 403, 200),
      maySee: ['admin'],
      check: (who, _s, b, f) => {
        if (who === 'admin') expect(b.items.map((i: { id: string }) => i.id)).toContain(f.instanceId);
      },
    },
    'GET Alice’s instances by customerId (admins only)': {
      method: 'GET',
      query: () => ({ all: 'true', customerId: users.owner.userId }),
      expect: A(401, 403, 403, 200),
      maySee: ['admin'],
    },
    'GET the database pools (admins only)': {
      method: 'GET',
      query: () => ({ pools: 'true' }),
      expect: A(401, 403, 403, 200),
      maySee: ['admin'],
      check: (who, _s, b) => {
        if (who === 'admin') expect(b.items.map((p: { name: string }) => p.name)).toContain('default');
      },
    },
    'sign a link to Alice’s backup (owner only)': {
      method: 'GET',
      query: (f) => ({ id: f.instanceId, backupLink: f.backupId }),
      expect: A(401, 404, 200, 404),
      maySee: ['owner'],
      check: (who, _s, b) => {
        if (who === 'owner') expect(b.url).toMatch(/\/api\/backup-download\?token=/);
      },
    },
    'subdomain availability (no tenant data)': {
      method: 'GET',
      query: (f) => ({ available: f.subdomain }),
      expect: A(401, 200, 200, 200),
      check: (who, _s, b) => {
        if (who !== 'anonymous') expect(b).toEqual({ available: false, reason: 'is taken' });
      },
    },
    'create (bad plan: auth first, then validation)': {
      method: 'POST',
      body: () => ({ name: 'x', subdomain: `m-${Date.now().toString(36)}`, plan: 'no-such-plan', odooVersion: '17' }),
      expect: A(401, 400, 400, 400),
    },
  },
  login: {
    'Alice’s address, wrong password (a Bearer changes nothing)': {
      method: 'POST',
      body: () => ({ email: users.owner.email, password: 'not the right password at all' }),
      expect: A(401, 401, 401, 401),
    },
  },
  logout: {
    'end own session': { method: 'POST', freshSession: true, expect: A(401, 204, 204, 204) },
  },
  'password-reset': {
    'request for Alice’s address': { method: 'POST', body: () => ({ email: users.owner.email }), expect: A(202, 202, 202, 202) },
  },
  plans: {
    'GET catalogue': { method: 'GET', expect: A(200, 200, 200, 200) },
  },
  refresh: {
    'an unknown refresh token': { method: 'POST', body: () => ({ refreshToken: 'A'.repeat(43) }), expect: A(401, 401, 401, 401) },
  },
  signup: {
    'Alice’s address again (no enumeration)': {
      method: 'POST',
      body: () => ({ email: users.owner.email, password: 'a long enough new password 1', firstName: 'Eve', lastName: 'Mallory', acceptTerms: true }),
      expect: A(202, 202, 202, 202),
    },
  },
  'trial-eligibility': {
    'GET own eligibility': { method: 'GET', expect: A(401, 200, 200, 200) },
  },
  'verify-email': {
    'an unknown token': { method: 'POST', body: () => ({ token: 'A'.repeat(43) }), expect: A(400, 400, 400, 400) },
    'resend for Alice’s (verified) address': { method: 'POST', body: () => ({ email: users.owner.email, resend: true }), expect: A(202, 202, 202, 202) },
  },
  'webhook-intake': {
    'a notification with a Bearer but no webhook token': {
      method: 'POST',
      query: () => ({ tenant: 'saasodoo' }),
      body: (f) => ({ eventType: 'SUBSCRIPTION_CANCEL', objectType: 'SUBSCRIPTION', objectId: f.subscriptionId, accountId: randomUUID(), accountExternalKey: null, metaData: null }),
      expect: A(401, 401, 401, 401),
    },
  },
};

let p: Platform;
const users = {} as Record<Exclude<Who, 'anonymous'>, TestUser>;
const f = {} as Fixture;

/** Alice's signed link re-pointed at another instance, keeping her signature: must not verify. */
function tamper(token: string): string {
  const [payload, sig] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  return `${Buffer.from(JSON.stringify({ ...claims, i: randomUUID() })).toString('base64url')}.${sig}`;
}

async function call(who: Who, fn: string, c: Call): Promise<{ status: number; text: string; body: any }> {
  const q = c.query ? `?${new URLSearchParams(c.query(f))}` : '';
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (who !== 'anonymous' && !c.noBearer) {
    headers.authorization = `Bearer ${c.freshSession ? (await loginTestUser(users[who])).accessToken : users[who].accessToken}`;
  }
  const res = await fetch(`${p.gateway}/api/${fn}${q}`, {
    method: c.method,
    headers,
    body: c.method === 'POST' ? JSON.stringify(c.body?.(f) ?? {}) : undefined,
  });
  const text = await res.text();
  let body: any;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, text, body };
}

function secretsOfAlice(): string[] {
  return [f.instanceId, f.subscriptionId, f.backupId, f.spareSessionId, users.owner.userId, users.owner.email, users.owner.sessionId, f.subdomain];
}

/** Bob's instance as a row (no subscription, so nothing drives it): stopped, with a backup still running. */
async function bobsStoppedInstance(): Promise<void> {
  f.bobInstanceId = randomUUID();
  f.bobPendingBackupId = randomUUID();
  await db('instance').none(
    `INSERT INTO instances (id, customer_id, name, subdomain, plan, odoo_version, status, billing_status, resources)
     VALUES ($1, $2, 'Bob Co', $3, 'basic-immediate', '17', 'stopped', 'paid', '{"cpu":1,"memoryMiB":1024,"storageGiB":5}')`,
    [f.bobInstanceId, users.other.userId, `bob-${Date.now().toString(36)}`],
  );
  await db('instance').none(`INSERT INTO backups (id, instance_id, kind, status) VALUES ($1, $2, 'manual', 'running')`, [f.bobPendingBackupId, f.bobInstanceId]);
}

beforeAll(async () => {
  p = await startPlatform({ warm: true });
  users.owner = await createTestUser({ firstName: 'Alice' });
  users.other = await createTestUser({ firstName: 'Bob' });
  users.admin = await createTestUser({ role: 'admin', firstName: 'Ada' });
  f.spareSessionId = (await loginTestUser(users.owner)).sessionId;
  f.subdomain = `alice-${Date.now().toString(36)}`;
  const res = await fetch(`${p.gateway}/api/instances`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${users.owner.accessToken}` },
    body: JSON.stringify({ name: 'Alice Co', subdomain: f.subdomain, plan: 'basic-immediate', odooVersion: '17' }),
  });
  const created = await res.json();
  expect(res.status, JSON.stringify(created)).toBe(202);
  f.instanceId = created.id;
  const row = await db('instance').one<{ subscription_id: string }>('SELECT subscription_id FROM instances WHERE id = $1', [f.instanceId]);
  f.subscriptionId = row.subscription_id;
  f.backupId = randomUUID();
  await db('instance').none(`INSERT INTO backups (id, instance_id, kind, status, completed_at) VALUES ($1, $2, 'manual', 'completed', now())`, [f.backupId, f.instanceId]);
  const link = await fetch(`${p.gateway}/api/instances?id=${f.instanceId}&backupLink=${f.backupId}`, { headers: { authorization: `Bearer ${users.owner.accessToken}` } });
  const linkBody = await link.json();
  expect(link.status, JSON.stringify(linkBody)).toBe(200);
  f.backupToken = new URL(linkBody.url).searchParams.get('token')!;
  await bobsStoppedInstance();
}, 180_000);

afterAll(async () => {
  await p?.stop();
});

describe('auth matrix', () => {
  it('has a row for every HTTP function (generated from functions/)', () => {
    expect(Object.keys(MATRIX).sort()).toEqual(httpFunctionNames());
  });

  for (const [fn, calls] of Object.entries(MATRIX)) {
    describe(fn, () => {
      for (const [what, c] of Object.entries(calls)) {
        for (const who of WHO.filter((w) => w in c.expect)) {
          it(`${what} as ${who} → ${c.expect[who]}`, async () => {
            const r = await call(who, fn, c);
            const want = c.expect[who]!;
            const info = `${c.method} /api/${fn} as ${who}: ${r.status} ${r.text.slice(0, 300)}`;
            if (want === 'ok') expect(r.status >= 200 && r.status < 300, info).toBe(true);
            else if (want === 'allowed') expect(![401, 403, 404].includes(r.status) && r.status < 500, info).toBe(true);
            else expect(r.status, info).toBe(want);
            if (r.status >= 400) {
              expect(r.body?.error?.code, info).toEqual(expect.any(String));
              expect(r.body?.error?.message, info).toEqual(expect.any(String));
            }
            if (!(c.maySee ?? []).includes(who)) {
              for (const s of secretsOfAlice()) expect(r.text.includes(s), `${info}\nleaks ${s}`).toBe(false);
            }
            c.check?.(who, r.status, r.body, f);
          });
        }
      }
    });
  }
});

describe('internal routes from outside, through the gateway (issue 15)', () => {
  const eventFunctions = functionNames().filter((n) => functionSpec(n).invoke === 'cloudevent');
  const headersOf = (who: Who): Record<string, string> => (who === 'anonymous' ? {} : { authorization: `Bearer ${users[who].accessToken}` });

  it('lists the event-only functions from functions/', () => {
    expect(eventFunctions).toEqual(expect.arrayContaining(['lifecycle', 'provision', 'instance-ops', 'quota-set', 'health-probe', 'email']));
  });

  for (const who of WHO) {
    it(`GET /_platform/status as ${who} → 404, nothing about the functions`, async () => {
      const res = await fetch(`${p.gateway}/_platform/status`, { headers: headersOf(who) });
      const text = await res.text();
      expect(res.status, text).toBe(404);
      expect(text).not.toMatch(/"pid"|"port"|lifecycle/);
    });

    it(`a valid CloudEvent to every event-only function, at /_platform/invoke/<fn> and /api/<fn>, as ${who} → 404`, async () => {
      for (const fn of eventFunctions) {
        for (const path of [`/_platform/invoke/${fn}`, `/api/${fn}`]) {
          // About Alice's instance: what a forged create_failed / quota / terminate would name.
          const res = await fetch(`${p.gateway}${path}`, {
            method: 'POST',
            headers: {
              ...headersOf(who),
              'content-type': 'application/json',
              'ce-specversion': '1.0',
              'ce-id': randomUUID(),
              'ce-type': 'com.saasodoo.instance.create_failed',
              'ce-source': '/saasodoo/instances',
            },
            body: JSON.stringify({ instanceId: f.instanceId, customerId: users.owner.userId }),
          });
          const text = await res.text();
          expect(res.status, `${path} as ${who}: ${text.slice(0, 200)}`).toBe(404);
          expect(JSON.parse(text).error.code).toBe('not_found');
        }
      }
    });
  }
});

describe('cross-tenant calls fired in parallel are all refused', () => {
  const N = 10;
  const bobCalls: [string, Call][] = [
    ['instances', { method: 'GET', query: (x) => ({ id: x.instanceId }), expect: {} }],
    ['instance-action', { method: 'POST', body: (x) => ({ id: x.instanceId, action: 'stop' }), expect: {} }],
    ['instance-action', { method: 'POST', body: (x) => ({ id: x.instanceId, action: 'backup' }), expect: {} }],
    ['instance-action', { method: 'POST', body: (x) => ({ id: x.instanceId, action: 'delete' }), expect: {} }],
    ['instance-action', { method: 'POST', body: (x) => ({ id: x.bobInstanceId, action: 'restore', backupId: x.backupId }), expect: {} }],
    ['billing', { method: 'POST', body: (x) => ({ action: 'startSubscription', instanceId: x.instanceId, plan: 'basic-immediate', trial: false }), expect: {} }],
    ['billing', { method: 'POST', body: (x) => ({ action: 'cancel', subscriptionId: x.subscriptionId, immediate: true }), expect: {} }],
    ['account', { method: 'POST', body: (x) => ({ action: 'revokeSession', sessionId: x.spareSessionId }), expect: {} }],
  ];

  it(`${N} copies of each of Bob's calls on Alice's resources, all at once: every one 404, no instance change recorded for Bob`, async () => {
    const answers = await Promise.all(bobCalls.flatMap(([fn, c]) => Array.from({ length: N }, () => call('other', fn, c).then((r) => ({ fn, ...r })))));
    expect(answers).toHaveLength(bobCalls.length * N);
    for (const r of answers) {
      expect(r.status, `${r.fn}: ${r.text.slice(0, 200)}`).toBe(404);
      for (const s of secretsOfAlice()) expect(r.text.includes(s), `${r.fn} leaks ${s}`).toBe(false);
    }
    const byBob = await db('instance').manyOrNone('SELECT 1 FROM instance_history WHERE actor = $1', [`customer:${users.other.userId}`]);
    expect(byBob).toEqual([]);
  });
});

describe('every protected route refuses a missing, malformed or ended token (generated from the route tables)', () => {
  it('answers 401 with the JSON error shape', async () => {
    const ended = await loginTestUser(users.other);
    await endTestSession(ended);
    const badTokens: [string, string | undefined][] = [
      ['no Authorization', undefined],
      ['malformed bearer', 'Bearer not-a-jwt'],
      ['other scheme', `Basic ${Buffer.from('a:b').toString('base64')}`],
      ['forged signature', `Bearer ${users.owner.accessToken.replace(/\.[^.]+$/, '.AAAA')}`],
      ['ended session', `Bearer ${ended.accessToken}`],
    ];
    const checked: string[] = [];
    for (const fn of httpFunctionNames()) {
      const routes = await routeTable(fn);
      for (const [method, r] of Object.entries(routes ?? {})) {
        if (r.auth !== 'customer' && r.auth !== 'admin') continue;
        for (const [label, authorization] of badTokens) {
          const res = await fetch(`${p.gateway}/api/${fn}`, {
            method,
            headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
            body: method === 'POST' ? '{}' : undefined,
          });
          const text = await res.text();
          const info = `${method} /api/${fn} with ${label}: ${res.status} ${text.slice(0, 200)}`;
          // Validation may run before authentication for a bad body: 400 is fine for `{}` POSTs, never a 2xx, 403/404 or 5xx.
          expect(method === 'POST' ? [400, 401] : [401], info).toContain(res.status);
          expect(JSON.parse(text).error.code, info).toEqual(expect.any(String));
          checked.push(`${method} ${fn}`);
        }
      }
    }
    expect(checked.length).toBeGreaterThan(10);
  });

  it('a Bearer on an optional route cannot be a bad one (plans: malformed token is 401, not anonymous)', async () => {
    const res = await fetch(`${p.gateway}/api/plans`, { headers: { authorization: 'Bearer not-a-jwt' } });
    expect(res.status).toBe(401);
  });
});
