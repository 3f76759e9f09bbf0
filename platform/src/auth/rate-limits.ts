/**
 * Rate limits (platform/src/auth/README.md 2), counted in Redis with rate-limiter-flexible so every
 * replica shares them: login 5 failures per account and 50 failures per IP
 * per 15 minutes; signup, password-reset requests and verification resends
 * 10 per IP per hour. Past a limit: 429 with Retry-After. Every attempt is
 * counted before the work it guards (takeAttempt), never after, so parallel
 * requests cannot slip past a limit. When Redis is down
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

/** A limit and the key it counts for (an address, an IP). */
export type Counted = [LimitName, string];

/**
 * Takes one attempt from each limit, in order, BEFORE the work it guards (a
 * password check, a mail). Redis counts atomically, so of many parallel
 * requests only as many as the limit allows get through: the check and the
 * count are one step (reading a counter, doing the work, then recording a
 * failure let 12 parallel guesses through a limit of 5). When one limit is
 * used up, the points already taken from the others are given back (a refused
 * request is no failure) and 429 with Retry-After is thrown.
 * Returns the refund: hand the attempt back when the work succeeded.
 */
export async function takeAttempt(limits: Counted[]): Promise<() => Promise<void>> {
  const taken: Counted[] = [];
  const refund = async (which: Counted[]) => {
    // Best effort: a refund lost to a Redis hiccup only leaves the attempt counted (the safe side).
    await Promise.all(
      which.map(([name, key]) =>
        ready(name)
          .then((l) => l.reward(keyOf(key)))
          .catch(() => {}),
      ),
    );
  };
  for (const [name, key] of limits) {
    try {
      await (await ready(name)).consume(keyOf(key));
      taken.push([name, key]);
    } catch (err) {
      await refund(taken);
      if (err instanceof RateLimiterRes) throw tooMany(err.msBeforeNext);
      throw err;
    }
  }
  return () => refund(taken);
}

/**
 * Runs `work` under `limits` (see takeAttempt). The attempt stays counted only
 * when `work` throws an error it passed through `failure` (a wrong password);
 * a success, or an error that is not the caller's doing (a database outage),
 * hands it back, so limits that count failures count nothing else.
 */
export async function limitedAttempt<T>(limits: Counted[], work: (failure: <E>(err: E) => E) => Promise<T>): Promise<T> {
  const refund = await takeAttempt(limits);
  let failed = false;
  try {
    return await work((err) => {
      failed = true;
      return err;
    });
  } finally {
    if (!failed) await refund();
  }
}

/** Counts one request against `name` for `key` before it is served; throws 429 once the limit is passed (limits counting every request). */
export async function consumeOrThrow(name: LimitName, key: string): Promise<void> {
  await takeAttempt([[name, key]]);
}

/** Forgets the failures of `key` (a successful login clears its account counter). */
export async function clearFailures(name: LimitName, key: string): Promise<void> {
  await (await ready(name)).delete(keyOf(key));
}
