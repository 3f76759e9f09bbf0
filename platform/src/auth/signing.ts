/**
 * The EdDSA (Ed25519) key that signs access tokens, and the signing itself.
 * Only `login` and `refresh` import this (through session-tokens.ts), so
 * only they are given `JWT_PRIVATE_KEY` (deploy/analyze.ts gives a secret to
 * the functions whose code mentions it; the local host does the same).
 *
 * Production: `JWT_PRIVATE_KEY` (PKCS8 PEM) with `JWT_KID`; its public JWK
 * must be listed in `JWT_PUBLIC_KEYS` (keys.ts), which `platform
 * jwt-public-key` prints. Laptop: the key generated into DATA_DIR.
 */
import { createPrivateKey, createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT, type JWK } from 'jose';
import { config } from '../config.ts';
import { defaultKid, parsePublicKeys } from './keys.ts';
import { signingKeyPem } from './local-key.ts';
import { ACCESS_TOKEN_SECONDS, type AccessClaims } from './tokens.ts';

export type SigningKey = { kid: string; privateKey: KeyObject };

let key: Promise<SigningKey> | undefined;

async function load(): Promise<SigningKey> {
  const c = config();
  const privateKey = createPrivateKey(signingKeyPem(c.JWT_PRIVATE_KEY));
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('JWT_PRIVATE_KEY must be an Ed25519 key (PKCS8 PEM)');
  return { kid: c.JWT_KID ?? (await defaultKid(createPublicKey(privateKey))), privateKey };
}

/** The process's signing key, loaded once (the first call may generate the local key). */
export function signingKey(): Promise<SigningKey> {
  key ??= load().catch((err) => {
    key = undefined;
    throw err;
  });
  return key;
}

/** Forget the loaded key (tests that change the key environment). */
export function resetSigningKey(): void {
  key = undefined;
}

/** Signs a new access token for a live session. */
export async function issueAccessToken(c: AccessClaims): Promise<{ accessToken: string; expiresIn: number }> {
  const signing = await signingKey();
  const accessToken = await new SignJWT({ sid: c.sessionId, role: c.role })
    .setProtectedHeader({ alg: 'EdDSA', kid: signing.kid, typ: 'JWT' })
    .setSubject(c.userId)
    .setIssuer(config().JWT_ISSUER)
    .setAudience(config().JWT_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(`${ACCESS_TOKEN_SECONDS}s`)
    .setJti(randomUUID())
    .sign(signing.privateKey);
  return { accessToken, expiresIn: ACCESS_TOKEN_SECONDS };
}

/** The public JWK of the current signing key: the entry JWT_PUBLIC_KEYS must hold for it. */
export async function currentPublicJwk(): Promise<JWK> {
  const signing = await signingKey();
  return { ...(createPublicKey(signing.privateKey).export({ format: 'jwk' }) as JWK), kid: signing.kid, alg: 'EdDSA', use: 'sig' };
}

/**
 * The JWT env the local host gives the functions it starts: every function
 * gets JWT_PUBLIC_KEYS (the current key plus any listed for a rotation),
 * and `signers` holds what only the signers get.
 */
export async function localJwtEnv(): Promise<{ all: Record<string, string>; signers: Record<string, string> }> {
  const c = config();
  const current = await currentPublicJwk();
  if (c.JWT_PUBLIC_KEYS) parsePublicKeys(c.JWT_PUBLIC_KEYS); // a bad value stops the host, naming the variable
  const extra = c.JWT_PUBLIC_KEYS ? (JSON.parse(c.JWT_PUBLIC_KEYS) as JWK[]).filter((k) => k.kid !== current.kid) : [];
  const signing = await signingKey();
  return {
    all: { JWT_PUBLIC_KEYS: JSON.stringify([current, ...extra]) },
    signers: { JWT_PRIVATE_KEY: signing.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), JWT_KID: signing.kid },
  };
}
