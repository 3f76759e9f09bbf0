/**
 * The soak's memory rule against synthetic series (tests/soak/memory.ts): the
 * noise it failed on (signup's RSS swinging 136–285 MB with Argon2 hashes in
 * flight, no trend) passes, a leak under the same noise fails, and scatter
 * without a trend is not taken for growth.
 */
import { describe, expect, it } from 'vitest';
import { fitSlope, floorOf, memoryGrowth } from '../../soak/memory.ts';

/** A seeded generator (mulberry32), so every series is the same on every run. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Readings every 5 s for `minutes`, as the soak takes them: a base that
 * grows `leak` MB/min, plus 0 to 2 Argon2 hashes (64 MB each) and some
 * allocator slack in flight at each reading. Returns the per-minute floors
 * and, for comparison, the one reading per minute the old rule used.
 */
function series(minutes: number, leak: number, seed: number) {
  const r = rng(seed);
  const floors: { minute: number; mb: number }[] = [];
  const once: { minute: number; mb: number }[] = [];
  for (let m = 1; m <= minutes; m++) {
    const readings = Array.from({ length: 12 }, (_, i) => 136 + leak * (m - 1 + i / 12) + 64 * Math.floor(r() * 2.35) + r() * 20);
    floors.push({ minute: m, mb: floorOf(readings)! });
    once.push({ minute: m, mb: readings[11] });
  }
  return { floors, once };
}

describe('the soak memory rule', () => {
  it('a flat series with Argon2-sized swings passes on every seed, though one reading a minute would often fail it', () => {
    let oldRuleFailed = 0;
    for (let seed = 1; seed <= 50; seed++) {
      const { floors, once } = series(20, 0, seed);
      expect(memoryGrowth(floors, 1), `seed ${seed}`).toBeUndefined();
      const half = once.slice(10);
      if (
        fitSlope(
          half.map((p) => p.minute),
          half.map((p) => p.mb),
        ).slope > 1
      )
        oldRuleFailed++;
    }
    // The old rule (slope of one reading a minute, no significance) fails a good share of these flat runs.
    expect(oldRuleFailed).toBeGreaterThan(5);
  });

  it('a leak of 3 MB/min under the same noise fails on every seed, naming the slope', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const why = memoryGrowth(series(20, 3, seed).floors, 1);
      expect(why, `seed ${seed}`).toMatch(/grows \d+\.\d\d ± \d+\.\d\d MB\/min over the last half \(threshold 1\)/);
    }
  });

  it('a leak below the threshold passes', () => {
    expect(memoryGrowth(series(20, 0.3, 7).floors, 1)).toBeUndefined();
  });

  it('floors that scatter without a trend are not growth, though their fitted slope is above the threshold', () => {
    const mb = [100, 100, 100, 100, 100, 101, 96, 100, 99, 104, 96, 104, 95, 108, 97, 112, 99, 103, 118, 106];
    const points = mb.map((v, i) => ({ minute: i + 1, mb: v }));
    const half = points.slice(10);
    const fit = fitSlope(
      half.map((p) => p.minute),
      half.map((p) => p.mb),
    );
    expect(fit.slope).toBeGreaterThan(1);
    expect(fit.slope / fit.se).toBeLessThan(3);
    expect(memoryGrowth(points, 1)).toBeUndefined();
  });

  it('steady growth with no scatter at all fails (a zero standard error is no excuse)', () => {
    const points = Array.from({ length: 10 }, (_, i) => ({ minute: i + 1, mb: 100 + 2 * i }));
    expect(memoryGrowth(points, 1)).toMatch(/grows 2\.00 ± 0\.00 MB\/min/);
  });

  it('fits a line exactly and finds no floor in no readings', () => {
    expect(fitSlope([1, 2, 3, 4], [3, 5, 7, 9])).toEqual({ slope: 2, se: 0 });
    expect(floorOf([])).toBeUndefined();
    expect(floorOf([5, 3, 9])).toBe(3);
  });
});
