/**
 * `authenticate` (platform/auth/verify.ts), used by every function: token
 * checks (algorithm, signature, expiry, audience, issuer, key rotation) and
 * session liveness in Redis with the auth-database fallback, through TCP
 * proxies that cut Redis and PostgreSQL.
 */
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SignJWT } from 'jose';
import { resetConfig } from '@saasodoo/platform/config';
import { closeDatabases } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { HttpError } from '@saasodoo/platform/errors';
import { closeRedis } from '@saasodoo/platform/redis';
import { resetKeyRing } from '@saasodoo/platform/auth/keys';
import { currentPublicJwk, signingKey } from '@saasodoo/platform/auth/signing';
import { sessionFromDatabase, useSessionDatabaseFallback } from '@saasodoo/platform/auth/sessions';
import { authenticate, setSessionFallback } from '@saasodoo/platform/auth/verify';
import { createTestUser, endTestSession, type TestUser } from '../../helpers/auth.ts';
import { tcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.ts';

let redisProxy: TcpProxy;
let pgProxy: TcpProxy;
let user: TestUser;

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof HttpError) return err.status;
    throw err;
  }
}

async function sign(o: { key?: import('node:crypto').KeyObject; kid?: string; aud?: string; iss?: string; exp?: number; alg?: string; sub?: string; sid?: string } = {}) {
  const signing = await signingKey();
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sid: o.sid ?? user.sessionId, role: 'customer' })
    .setProtectedHeader({ alg: o.alg ?? 'EdDSA', kid: o.kid ?? signing.kid })
    .setSubject(o.sub ?? user.userId)
    .setIssuer(o.iss ?? 'saasodoo')
    .setAudience(o.aud ?? 'saasodoo-api')
    .setIssuedAt(now - 5)
    .setExpirationTime(o.exp ?? now + 300)
    .setJti('j1')
    .sign(o.key ?? signing.privateKey);
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

beforeAll(async () => {
  redisProxy = await tcpProxy('127.0.0.1', 6379);
  pgProxy = await tcpProxy('127.0.0.1', 5432);
  process.env.REDIS_URL = redisProxy.url('redis');
  process.env.DATABASE_PORT = String(pgProxy.port);
  resetConfig();
  await migrate({ databases: ['auth'] });
  user = await createTestUser();
});

afterAll(async () => {
  await closeRedis();
  await closeDatabases();
  await dropNamespace();
  await redisProxy.close();
  await pgProxy.close();
});

describe('token checks', () => {
  it('accepts a token of a live session and returns the caller', async () => {
    expect(await authenticate(`Bearer ${user.accessToken}`)).toEqual({ userId: user.userId, sessionId: user.sessionId, role: 'customer' });
  });

  it('refuses a missing or malformed header', async () => {
    for (const h of [undefined, '', 'Bearer', `Basic ${user.accessToken}`, `Bearer ${user.accessToken} x`, 'Bearer a.b']) {
      expect(await status(authenticate(h))).toBe(401);
    }
  });

  it('refuses alg none', async () => {
    const now = Math.floor(Date.now() / 1000);
    const payload = { sub: user.userId, sid: user.sessionId, role: 'admin', iss: 'saasodoo', aud: 'saasodoo-api', iat: now, exp: now + 300, jti: 'x' };
    const kid = (await signingKey()).kid;
    expect(await status(authenticate(`Bearer ${b64({ alg: 'none', typ: 'JWT', kid })}.${b64(payload)}.`))).toBe(401);
    // and the real token's payload re-labelled alg none with its signature dropped
    const [, body] = user.accessToken.split('.');
    expect(await status(authenticate(`Bearer ${b64({ alg: 'none', kid })}.${body}.`))).toBe(401);
  });

  it('refuses a token signed with a wrong key (even with the right kid)', async () => {
    const other = generateKeyPairSync('ed25519').privateKey;
    expect(await status(authenticate(`Bearer ${await sign({ key: other })}`))).toBe(401);
    expect(await status(authenticate(`Bearer ${await sign({ key: other, kid: 'unknown' })}`))).toBe(401);
  });

  it('refuses HS256 keyed with the public key (algorithm confusion)', async () => {
    const pub = createPublicKey((await signingKey()).privateKey).export({ format: 'der', type: 'spki' });
    const token = await new SignJWT({ sid: user.sessionId, role: 'admin' })
      .setProtectedHeader({ alg: 'HS256', kid: (await signingKey()).kid })
      .setSubject(user.userId)
      .setIssuer('saasodoo')
      .setAudience('saasodoo-api')
      .setIssuedAt()
      .setExpirationTime('5m')
      .setJti('x')
      .sign(new Uint8Array(pub));
    expect(await status(authenticate(`Bearer ${token}`))).toBe(401);
  });

  it('refuses a wrong audience or issuer', async () => {
    expect(await status(authenticate(`Bearer ${await sign({ aud: 'other-api' })}`))).toBe(401);
    expect(await status(authenticate(`Bearer ${await sign({ iss: 'someone-else' })}`))).toBe(401);
  });

  it('refuses an expired token', async () => {
    const past = Math.floor(Date.now() / 1000) - 60;
    expect(await status(authenticate(`Bearer ${await sign({ exp: past })}`))).toBe(401);
  });

  it('refuses a token whose sub does not own the session', async () => {
    expect(await status(authenticate(`Bearer ${await sign({ sub: '00000000-0000-4000-8000-000000000000' })}`))).toBe(401);
  });

  it('accepts the previous key during a rotation (JWT_PUBLIC_KEYS), and only while listed', async () => {
    const old = generateKeyPairSync('ed25519');
    const token = await sign({ key: old.privateKey, kid: 'previous-key' });
    expect(await status(authenticate(`Bearer ${token}`))).toBe(401);
    process.env.JWT_PUBLIC_KEYS = JSON.stringify([await currentPublicJwk(), { ...old.publicKey.export({ format: 'jwk' }), kid: 'previous-key' }]);
    resetConfig();
    resetKeyRing();
    try {
      expect(await authenticate(`Bearer ${token}`)).toMatchObject({ userId: user.userId });
      expect(await authenticate(`Bearer ${user.accessToken}`)).toMatchObject({ userId: user.userId });
    } finally {
      delete process.env.JWT_PUBLIC_KEYS;
      resetConfig();
      resetKeyRing();
    }
    expect(await status(authenticate(`Bearer ${token}`))).toBe(401);
  });
});

describe('verified-token cache (issue 23): no bypass of the checks it skips', () => {
  it('a tampered copy of a cached token is verified afresh and refused', async () => {
    const token = await sign();
    expect(await status(authenticate(`Bearer ${token}`))).toBe(200);
    const [h, p, sig] = token.split('.');
    const flipped = sig.slice(0, -2) + (sig.at(-2) === 'A' ? 'B' : 'A') + sig.at(-1);
    expect(await status(authenticate(`Bearer ${h}.${p}.${flipped}`))).toBe(401);
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    expect(await status(authenticate(`Bearer ${h}.${b64({ ...claims, role: 'admin' })}.${sig}`))).toBe(401);
  });

  it('a cached token is refused once its exp has passed', async () => {
    const token = await sign({ exp: Math.floor(Date.now() / 1000) + 60 });
    expect(await status(authenticate(`Bearer ${token}`))).toBe(200);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 70_000);
      expect(await status(authenticate(`Bearer ${token}`))).toBe(401);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('session liveness', () => {
  it('refuses every token of a session once it ended', async () => {
    const u = await createTestUser();
    expect(await status(authenticate(`Bearer ${u.accessToken}`))).toBe(200);
    await endTestSession(u);
    expect(await status(authenticate(`Bearer ${u.accessToken}`))).toBe(401);
  });

  it('Redis down: a non-auth function answers 503; an auth function falls back to the database; both down: 503', async () => {
    const ended = await createTestUser();
    await endTestSession(ended);
    redisProxy.cut();
    await closeRedis(); // a fresh connection attempt meets the cut proxy
    try {
      setSessionFallback(undefined); // what every non-auth function runs with
      expect(await status(authenticate(`Bearer ${user.accessToken}`))).toBe(503);

      useSessionDatabaseFallback(); // what the auth functions run with
      expect(await authenticate(`Bearer ${user.accessToken}`)).toEqual({ userId: user.userId, sessionId: user.sessionId, role: 'customer' });
      expect(await status(authenticate(`Bearer ${ended.accessToken}`))).toBe(401);

      pgProxy.cut();
      await closeDatabases();
      try {
        expect(await status(authenticate(`Bearer ${user.accessToken}`))).toBe(503);
      } finally {
        pgProxy.restore();
      }
    } finally {
      redisProxy.restore();
      await closeRedis();
      setSessionFallback(undefined);
    }
    expect(await sessionFromDatabase(user.sessionId)).toEqual({ userId: user.userId, role: 'customer' });
    expect(await status(authenticate(`Bearer ${user.accessToken}`))).toBe(200);
  });
});
