/**
 * The EdDSA (Ed25519) keys that sign and verify access tokens.
 *
 * Production: the signing key comes from env `JWT_PRIVATE_KEY` (PKCS8 PEM)
 * with `JWT_KID`; `JWT_PUBLIC_KEYS` (a JSON array of public JWKs, each with
 * a `kid`) lists the keys still accepted during a rotation, so tokens signed
 * by the previous key stay valid until they expire (10 minutes).
 * Laptop: the key pair is generated once into DATA_DIR/secrets.json (mode 600,
 * via `localSecret`) and reused by every process of the platform.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { config } from '../config.ts';
import { localSecret } from '../secrets.ts';

export type SigningKey = { kid: string; privateKey: KeyObject };
export type KeyRing = { signing: SigningKey; verify: Map<string, KeyObject> };

let ring: Promise<KeyRing> | undefined;

function generatePem(): string {
  return generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

async function load(): Promise<KeyRing> {
  const c = config();
  const pem = localSecret('jwt.ed25519.pkcs8', c.JWT_PRIVATE_KEY, generatePem);
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('JWT_PRIVATE_KEY must be an Ed25519 key (PKCS8 PEM)');
  const publicKey = createPublicKey(privateKey);
  // Without an explicit kid the key's own JWK thumbprint names it: stable and unique per key.
  const kid = c.JWT_KID ?? (await calculateJwkThumbprint(publicKey.export({ format: 'jwk' }) as JWK));
  const verify = new Map<string, KeyObject>([[kid, publicKey]]);
  if (c.JWT_PUBLIC_KEYS) {
    let jwks: unknown;
    try {
      jwks = JSON.parse(c.JWT_PUBLIC_KEYS);
    } catch {
      throw new Error('JWT_PUBLIC_KEYS must be a JSON array of public JWKs');
    }
    if (!Array.isArray(jwks)) throw new Error('JWT_PUBLIC_KEYS must be a JSON array of public JWKs');
    for (const jwk of jwks as JWK[]) {
      if (!jwk.kid || jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || 'd' in jwk) {
        throw new Error('JWT_PUBLIC_KEYS: each entry must be a public Ed25519 JWK with a kid');
      }
      verify.set(jwk.kid, createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' }));
    }
  }
  return { signing: { kid, privateKey }, verify };
}

/** The process's key ring, loaded once (the first call may generate the local key). */
export function keyRing(): Promise<KeyRing> {
  ring ??= load().catch((err) => {
    ring = undefined;
    throw err;
  });
  return ring;
}

/** Forget the loaded keys (tests that change the key environment). */
export function resetKeyRing(): void {
  ring = undefined;
}

/** The public JWK of the current signing key, for publishing to JWT_PUBLIC_KEYS of the next rotation. */
export async function currentPublicJwk(): Promise<JWK> {
  const { signing } = await keyRing();
  return { ...(createPublicKey(signing.privateKey).export({ format: 'jwk' }) as JWK), kid: signing.kid, alg: 'EdDSA', use: 'sig' };
}
