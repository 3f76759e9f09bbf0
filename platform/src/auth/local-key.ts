/**
 * The laptop's EdDSA key pair, generated once into DATA_DIR/secrets.json
 * (mode 600, via `localSecret`). Kept apart from signing.ts so the laptop
 * fallback of keys.ts can derive the public key without any mention of the
 * private key's env var (deploy/analyze.ts hands out secrets by mention).
 */
import { generateKeyPairSync } from 'node:crypto';
import { localSecret } from '../secrets.ts';

function generatePem(): string {
  return generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** The PKCS8 PEM of the signing key: `fromEnv` when given, else the local one (generated on first use). */
export function signingKeyPem(fromEnv?: string): string {
  return localSecret('jwt.ed25519.pkcs8', fromEnv, generatePem);
}
