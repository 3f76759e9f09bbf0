/**
 * Rate limits (SPEC 2), counted in Redis with rate-limiter-flexible so every
 * replica shares them: login 5 failures per account and 50 failures per IP
 * per 15 minutes; signup, password-reset requests and verification resends
 * 10 per IP per hour. Past a limit: 429 with Retry-After. When Redis is down
 * each process keeps counting in memory (insurance limiter) rather than
 * letting brute force through or refusing every login.
 */
import { createHash } from 'node:crypto';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { HttpError } from '../errors.ts';
import { redis } from '../redis.ts';
import { connectedRedis } from './liveness.ts';

type Limit = { points: number; duration: number };
export const LIMITS = {
  loginAccount: { points: 5, duration: 900 },
  loginIp: { points: 50, duration: 900 },
  signupIp: { points: 10, duration: 3600 },
  resetIp: { points: 10, duration: 3600 },
  resendIp: { points: 10, duration: 3600 },
} satisfies Record<string, Limit>;
export type LimitName = keyof typeof LIMITS;

const limiters = new Map<LimitName, RateLimiterRedis>();

function limiter(name: LimitName): RateLimiterRedis {
  let l = limiters.get(name);
  if (!l) {
    const { points, duration } = LIMITS[name];
    l = new RateLimiterRedis({
      storeClient: redis(),
      keyPrefix: `rl:${name}`,
      points,
      duration,
      insuranceLimiter: new RateLimiterMemory({ points, duration }),
    });
    limiters.set(name, l);
  }
  return l;
}

async function ready(name: LimitName): Promise<RateLimiterRedis> {
  await connectedRedis();
  return limiter(name);
}

/** Counter keys never hold an address in clear (Redis dumps and MONITOR are readable by ops). */
function keyOf(k: string): string {
  return createHash('sha256').update(k.toLowerCase()).digest('base64url').slice(0, 32);
}

function tooMany(msBeforeNext: number): HttpError {
  return HttpError.tooMany(msBeforeNext / 1000, 'Too many attempts, try again later');
}

/** Counts one request against `name` for `key`; throws 429 once the limit is passed. */
export async function consumeOrThrow(name: LimitName, key: string): Promise<void> {
  try {
    await (await ready(name)).consume(keyOf(key));
  } catch (err) {
    if (err instanceof RateLimiterRes) throw tooMany(err.msBeforeNext);
    throw err;
  }
}

/** Throws 429 when `key` already used up `name` (limits counting failures only). */
export async function refuseIfExhausted(name: LimitName, key: string): Promise<void> {
  const res = await (await ready(name)).get(keyOf(key));
  if (res && res.consumedPoints >= LIMITS[name].points) throw tooMany(res.msBeforeNext);
}

/** Records one failure against `name` for `key` (never throws for the limit itself). */
export async function recordFailure(name: LimitName, key: string): Promise<void> {
  await (await ready(name)).penalty(keyOf(key)).catch((err) => {
    if (!(err instanceof RateLimiterRes)) throw err;
  });
}

/** Forgets the failures of `key` (a successful login clears its account counter). */
export async function clearFailures(name: LimitName, key: string): Promise<void> {
  await (await ready(name)).delete(keyOf(key));
}
