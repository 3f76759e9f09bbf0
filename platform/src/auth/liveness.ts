/**
 * Session liveness in Redis: key `session:<sid>` holds the session's user and
 * current role while the session exists. Every function reads it on every
 * authenticated call, so deleting it ends the session everywhere at once.
 * The auth database (`user_sessions`) stays the source of truth: a refresh
 * writes the key again, so a Redis that lost its data only costs one refresh.
 */
import { redis } from '../redis.ts';
import type { Role } from './tokens.ts';

export type LiveSession = { userId: string; role: Role };

const key = (sid: string) => `session:${sid}`;

/** The live session `sid`, or undefined when it does not exist. Throws when Redis is down. */
export async function readLiveness(sid: string): Promise<LiveSession | undefined> {
  const raw = await redis().get(key(sid));
  if (!raw) return undefined;
  const v = JSON.parse(raw) as { u: string; r: Role };
  return { userId: v.u, role: v.r };
}

/** Marks a session live until `expiresAt`. Throws when Redis is down. */
export async function markLive(sid: string, s: LiveSession, expiresAt: Date): Promise<void> {
  const ttl = Math.max(1, Math.ceil((expiresAt.getTime() - Date.now()) / 1000));
  await redis().set(key(sid), JSON.stringify({ u: s.userId, r: s.role }), 'EX', ttl);
}

/** Ends sessions in Redis. Throws when Redis is down (callers must then not report success). */
export async function markDead(sids: string[]): Promise<void> {
  if (sids.length) await redis().del(...sids.map(key));
}

/** Rewrites the role of live sessions (admin grant / revoke take effect at once). */
export async function updateLiveRole(sids: string[], userId: string, role: Role): Promise<void> {
  const pipeline = redis().pipeline();
  for (const sid of sids) pipeline.set(key(sid), JSON.stringify({ u: userId, r: role }), 'KEEPTTL', 'XX');
  const results = await pipeline.exec();
  const failed = results?.find(([err]) => err);
  if (failed) throw failed[0];
}
