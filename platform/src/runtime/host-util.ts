/**
 * Small host-side helpers the drivers that run instances on this machine
 * (local and docker) share: port checks, disk usage, and waiting on a
 * driver's own status until an instance serves.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import type { ReadyProgress, RuntimeStatus } from './types.ts';
import { RuntimeError } from './types.ts';

/** Whether a loopback port can be bound now (the OS is asked, then the port released). */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Bytes used under `dir` (`du -sb`); 0 when it does not exist. */
export function duBytes(dir: string): Promise<number> {
  return new Promise((resolve) => {
    execFile('du', ['-sb', dir], (err, out) => resolve(err ? 0 : Number(String(out).split(/\s/)[0]) || 0));
  });
}

/**
 * Asks `status` until the instance is running, reporting each change of
 * state; a missing, failed, stopped or suspended instance or the timeout
 * ends the wait with a RuntimeError naming why. `status` gets the last state
 * seen, so a runtime that can wait for a change (the local daemon) does, and
 * passes intervalMs 0; others are polled every intervalMs.
 */
export async function waitUntilRunning(
  status: (last: string | undefined, remainingMs: number) => Promise<RuntimeStatus>,
  o: { timeoutMs: number; intervalMs: number; runtime: string; onProgress?: (p: ReadyProgress) => void },
): Promise<void> {
  const started = Date.now();
  let last: string | undefined;
  for (;;) {
    const st = await status(last, o.timeoutMs - (Date.now() - started));
    if (st.state !== last) {
      last = st.state;
      o.onProgress?.({ state: st.state, elapsedMs: Date.now() - started, message: st.reason });
    }
    if (st.state === 'running') return;
    if (st.state === 'missing') throw new RuntimeError('not_found', `the instance is not in the ${o.runtime}`);
    if (st.state === 'failed') throw new RuntimeError('failed', st.reason ?? 'the instance failed to start');
    if (st.state === 'stopped' || st.state === 'suspended') throw new RuntimeError('failed', st.reason ?? `the instance is ${st.state}`);
    if (Date.now() - started >= o.timeoutMs) throw new RuntimeError('timeout', `not healthy after ${Math.round(o.timeoutMs / 1000)} s`);
    if (o.intervalMs > 0) await new Promise((r) => setTimeout(r, o.intervalMs));
  }
}
