/**
 * Session liveness in Redis: key `session:<sid>` holds the session's user and
 * current role while the session exists. Every function reads it on every
 * authenticated call, so deleting it ends the session everywhere at once.
 * The auth database (`user_sessions`) stays the source of truth: a refresh
 * writes the key again, so a Redis that lost its data only costs one refresh.
 */
import type { Redis } from 'ioredis';
import { redis } from '../redis.ts';
import type { Role } from './tokens.ts';

export type LiveSession = { userId: string; role: Role };

const key = (sid: string) => `session:${sid}`;

/**
 * The shared client once its first connection is up. `redis()` refuses
 * commands while connecting (no offline queue), which would turn the first
 * request of every fresh process into a 503; so the first connection attempt
 * is awaited (bounded by connectTimeout), while a client that lost Redis
 * (`reconnecting`) still fails fast.
 */
export async function connectedRedis(): Promise<Redis> {
  const r = redis();
  if (r.status !== 'wait' && r.status !== 'connecting' && r.status !== 'connect') return r;
  if (r.status === 'wait') r.connect().catch(() => {});
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      r.off('ready', done).off('error', done).off('close', done);
      resolve();
    };
    const timer = setTimeout(done, 2500);
    r.once('ready', done).once('error', done).once('close', done);
  });
  return r;
}

/** The live session `sid`, or undefined when it does not exist. Throws when Redis is down. */
export async function readLiveness(sid: string): Promise<LiveSession | undefined> {
  const raw = await (await connectedRedis()).get(key(sid));
  if (!raw) return undefined;
  const v = JSON.parse(raw) as { u: string; r: Role };
  return { userId: v.u, role: v.r };
}

/** Marks a session live until `expiresAt`. Throws when Redis is down. */
export async function markLive(sid: string, s: LiveSession, expiresAt: Date): Promise<void> {
  const ttl = Math.max(1, Math.ceil((expiresAt.getTime() - Date.now()) / 1000));
  await (await connectedRedis()).set(key(sid), JSON.stringify({ u: s.userId, r: s.role }), 'EX', ttl);
}

/** Ends sessions in Redis. Throws when Redis is down (callers must then not report success). */
export async function markDead(sids: string[]): Promise<void> {
  if (sids.length) await (await connectedRedis()).del(...sids.map(key));
}

/** Rewrites the role of live sessions (admin grant / revoke take effect at once). */
export async function updateLiveRole(sids: string[], userId: string, role: Role): Promise<void> {
  const pipeline = (await connectedRedis()).pipeline();
  for (const sid of sids) pipeline.set(key(sid), JSON.stringify({ u: userId, r: role }), 'KEEPTTL', 'XX');
  const results = await pipeline.exec();
  const failed = results?.find(([err]) => err);
  if (failed) throw failed[0];
}
