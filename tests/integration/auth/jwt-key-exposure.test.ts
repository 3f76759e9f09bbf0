/**
 * JWT private key exposure (issue 15, finding 5): only the functions that sign
 * access tokens (login, refresh) get the private key; every other function
 * verifies with public keys only. Locally: the env of a function process the
 * supervisor starts. (The Kubernetes side: tests/unit/deploy/cluster-hardening.)
 */
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { resetKeyRing } from '@saasodoo/platform/auth/keys';
import { currentPublicJwk, issueAccessToken, localJwtEnv, resetSigningKey } from '@saasodoo/platform/auth/signing';
import { InvalidTokenError, verifyAccessToken } from '@saasodoo/platform/auth/tokens';
import { resetConfig } from '@saasodoo/platform/config';
import { Supervisor } from '@saasodoo/platform/host/supervisor';
import { freePortRange } from '../../helpers/ports.ts';

const saved = { ...process.env };
let supervisor: Supervisor | undefined;

function restoreEnv(): void {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
  resetConfig();
  resetKeyRing();
  resetSigningKey();
}

afterEach(restoreEnv);
afterAll(async () => {
  await supervisor?.stop();
});

/** The environment of a running process, from /proc. */
function environOf(pid: number): Record<string, string> {
  const raw = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
  return Object.fromEntries(
    raw
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

describe('JWT private key exposure', () => {
  it('a non-signing function started by the local host has only the public keys; login and refresh get the private key', async () => {
    const jwt = await localJwtEnv();
    // Even when the operator's shell exports it, a non-signer must not inherit it.
    process.env.JWT_PRIVATE_KEY = jwt.signers.JWT_PRIVATE_KEY;
    supervisor = new Supervisor({ portBase: await freePortRange(3), only: ['plans', 'login', 'refresh'], env: { ...jwt.all }, secretEnv: jwt.signers });
    await supervisor.url('plans');
    const pid = supervisor.status().find((f) => f.name === 'plans')!.pid!;
    const env = environOf(pid);
    expect(env.JWT_PRIVATE_KEY).toBeUndefined();
    expect(Object.values(env).some((v) => v.includes('PRIVATE KEY'))).toBe(false);
    expect(JSON.parse(env.JWT_PUBLIC_KEYS!)).toEqual([await currentPublicJwk()]);

    for (const signer of ['login', 'refresh']) {
      expect((await supervisor.secretsFor(signer)).give.JWT_PRIVATE_KEY).toBe(jwt.signers.JWT_PRIVATE_KEY);
    }
    await supervisor.url('login');
    expect(environOf(supervisor.status().find((f) => f.name === 'login')!.pid!).JWT_PRIVATE_KEY).toBe(jwt.signers.JWT_PRIVATE_KEY);
  }, 120_000);

  it('verification works with JWT_PUBLIC_KEYS alone, without any private key in reach', async () => {
    const { accessToken } = await issueAccessToken({ userId: 'u1', sessionId: 's1', role: 'customer' });
    const publicKeys = JSON.stringify([await currentPublicJwk()]);
    // A fresh DATA_DIR: were the private key still used, a new one would be generated and the token refused.
    process.env.DATA_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'jwt-public-only-'));
    process.env.JWT_PUBLIC_KEYS = publicKeys;
    process.env.NODE_ENV = 'production';
    resetConfig();
    resetKeyRing();
    expect(await verifyAccessToken(accessToken)).toEqual({ userId: 'u1', sessionId: 's1', role: 'customer' });
    expect(fs.readdirSync(process.env.DATA_DIR)).toEqual([]);

    // Only listed keys verify.
    process.env.JWT_PUBLIC_KEYS = JSON.stringify([{ ...generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }), kid: (await currentPublicJwk()).kid }]);
    resetConfig();
    resetKeyRing();
    await expect(verifyAccessToken(accessToken)).rejects.toBeInstanceOf(InvalidTokenError);
  });

  it('production refuses to verify without JWT_PUBLIC_KEYS, or with a private JWK or none listed in it', async () => {
    process.env.NODE_ENV = 'production';
    const { accessToken } = await issueAccessToken({ userId: 'u1', sessionId: 's1', role: 'customer' });
    for (const value of [undefined, '[]', JSON.stringify([{ ...generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }), kid: 'k' }])]) {
      if (value === undefined) delete process.env.JWT_PUBLIC_KEYS;
      else process.env.JWT_PUBLIC_KEYS = value;
      resetConfig();
      resetKeyRing();
      await expect(verifyAccessToken(accessToken)).rejects.toThrow(/JWT_PUBLIC_KEYS/);
    }
  });
});
