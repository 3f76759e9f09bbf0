/**
 * The soak's memory rule (issue 25 item 10), noise-aware. A process's RSS
 * swings with work in flight (signup's Argon2 hashes take 64 MB each while
 * they run): one reading per minute lands on the peaks or between them at
 * random, and a slope fitted through such readings is noise (3.1 MB/min over
 * a flat 136–285 MB series). So:
 *
 * - the soak reads RSS every second and keeps, per minute, the lowest
 *   reading: the floor, what the process holds when nothing is in flight.
 *   A leak raises the floor; work in flight does not. (On a machine so
 *   loaded that a process's work never drains within a minute, the floor
 *   carries that standing work too: run the soak on a quiet machine.)
 * - the slope is fitted on those floors over the last half of the run, and
 *   counts as growth only when it is above the threshold and also
 *   significant against the scatter of the floors around the line (t ≥ 3):
 *   a floor that steps up and down at random is no trend.
 */

/** Least-squares fit of ys over xs: the slope and its standard error (0 when the points are on the line or too few). */
export function fitSlope(xs: number[], ys: number[]): { slope: number; se: number } {
  const n = xs.length;
  if (n < 2) return { slope: 0, se: 0 };
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  if (!sxx) return { slope: 0, se: 0 };
  const slope = sxy / sxx;
  if (n < 3) return { slope, se: 0 };
  let rss = 0;
  for (let i = 0; i < n; i++) rss += (ys[i] - my - slope * (xs[i] - mx)) ** 2;
  return { slope, se: Math.sqrt(rss / (n - 2) / sxx) };
}

/** The lowest of a window's readings (undefined for none): what the process keeps between bursts of work. */
export function floorOf(readings: number[]): number | undefined {
  return readings.length ? Math.min(...readings) : undefined;
}

/** How many standard errors the slope must clear to count as a trend, not scatter. */
export const MIN_T = 3;

/**
 * Whether a process's memory grows without bound, from its per-minute floors
 * (`minute`, MB): the floors' slope over the last half of the run is above
 * `thresholdMbPerMin` and at least MIN_T standard errors from flat. Returns
 * the reason, or undefined. Why the last half: start-up (caches, JIT, pools)
 * grows memory once, then it levels off.
 */
export function memoryGrowth(points: { minute: number; mb: number }[], thresholdMbPerMin: number): string | undefined {
  const half = points.slice(Math.floor(points.length / 2));
  if (half.length < 2) return undefined;
  const { slope, se } = fitSlope(
    half.map((p) => p.minute),
    half.map((p) => p.mb),
  );
  if (slope <= thresholdMbPerMin) return undefined;
  if (se > 0 && slope / se < MIN_T) return undefined;
  return `memory (lowest RSS per minute) grows ${slope.toFixed(2)} ± ${se.toFixed(2)} MB/min over the last half (threshold ${thresholdMbPerMin})`;
}
