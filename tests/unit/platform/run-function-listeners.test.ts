/**
 * faas-js-runtime adds process listeners on every start (issue 25: the soak
 * found 11 uncaughtException listeners in one process); startFunction hands
 * them back when the server closes, so starting and stopping functions in
 * one process leaves `process` as it found it.
 */
import type { Server } from 'node:http';
import { describe, expect, it } from 'vitest';
import { startFunction } from '@saasodoo/platform/host/run-function';

const EVENTS = ['uncaughtException', 'SIGINT', 'SIGTERM', 'SIGQUIT'] as const;
const counts = () => EVENTS.map((e) => process.listenerCount(e));
const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));

describe('startFunction', () => {
  it('leaves no process listener behind once its server closes, however many starts', async () => {
    const fn = { handle: async () => ({ ok: true }) };
    // The first start installs the crash log once for the process: count from after it.
    await close(await startFunction(fn as never, 0));
    const base = counts();
    for (let i = 0; i < 12; i++) {
      const s = await startFunction(fn as never, 0);
      // While it serves, its start's listeners are there (faas-js-runtime's shutdown on signals).
      expect(counts()[0]).toBe(base[0] + 1);
      await close(s);
    }
    expect(counts()).toEqual(base);
  });
});
