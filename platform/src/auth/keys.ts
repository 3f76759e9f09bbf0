/**
 * The public keys that verify access tokens, used by every function.
 *
 * Verification needs no secret: `JWT_PUBLIC_KEYS` (a JSON array of public
 * Ed25519 JWKs, each with its `kid`) lists every key accepted, the current
 * signing key included and, during a rotation, the previous one until its
 * tokens expire (10 minutes). Only the functions that sign (signing.ts:
 * login, refresh) get the private key. The local host sets JWT_PUBLIC_KEYS
 * for every function it starts (host/supervisor.ts).
 *
 * A laptop process not started by the host (tests, the CLI) without
 * JWT_PUBLIC_KEYS verifies with the public half of the local key in
 * DATA_DIR. Production refuses to start without JWT_PUBLIC_KEYS.
 */
import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { config } from '../config.ts';
import { signingKeyPem } from './local-key.ts';

let keys: Promise<Map<string, KeyObject>> | undefined;

/** Parses JWT_PUBLIC_KEYS; throws naming the variable when it is not a list of public Ed25519 JWKs with kids. */
export function parsePublicKeys(text: string): Map<string, KeyObject> {
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch {
    throw new Error('JWT_PUBLIC_KEYS must be a JSON array of public JWKs');
  }
  if (!Array.isArray(jwks)) throw new Error('JWT_PUBLIC_KEYS must be a JSON array of public JWKs');
  const out = new Map<string, KeyObject>();
  for (const jwk of jwks as JWK[]) {
    if (!jwk || typeof jwk !== 'object' || !jwk.kid || jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || 'd' in jwk) {
      throw new Error('JWT_PUBLIC_KEYS: each entry must be a public Ed25519 JWK with a kid');
    }
    out.set(jwk.kid, createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }));
  }
  if (!out.size) throw new Error('JWT_PUBLIC_KEYS lists no key: add the current signing key (platform jwt-public-key)');
  return out;
}

/** The kid of a key that has no explicit one: its JWK thumbprint, stable and unique per key. */
export function defaultKid(publicKey: KeyObject): Promise<string> {
  return calculateJwkThumbprint(publicKey.export({ format: 'jwk' }) as JWK);
}

async function load(): Promise<Map<string, KeyObject>> {
  const c = config();
  if (c.JWT_PUBLIC_KEYS) return parsePublicKeys(c.JWT_PUBLIC_KEYS);
  if (c.NODE_ENV === 'production') throw new Error('JWT_PUBLIC_KEYS is required in production (the public keys that verify access tokens)');
  const publicKey = createPublicKey(createPrivateKey(signingKeyPem()));
  return new Map([[c.JWT_KID ?? (await defaultKid(publicKey)), publicKey]]);
}

/** The keys accepted for verification, by kid, loaded once per process. */
export function verificationKeys(): Promise<Map<string, KeyObject>> {
  keys ??= load().catch((err) => {
    keys = undefined;
    throw err;
  });
  return keys;
}

/** Forget the loaded keys (tests that change the key environment). */
export function resetKeyRing(): void {
  keys = undefined;
}
