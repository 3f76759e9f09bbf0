/**
 * A provisioning step that fails because the database server could not be
 * reached just then is tried again (issue 25: the fault suite saw instances
 * parked in `error` by a connection timeout); any other failure is not.
 */
import { describe, expect, it } from 'vitest';
import { isUnavailable } from '@saasodoo/platform/errors';
import { retryTransient } from '@saasodoo/platform/instances/provisioning';

describe('transient for provisioning = unavailable for an answer (isUnavailable)', () => {
  it('knows connection timeouts, resets, full connection slots and a restarting server; not a wrong step', () => {
    expect(isUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isUnavailable(Object.assign(new Error('sorry, too many clients already'), { code: '53300' }))).toBe(true);
    expect(isUnavailable(Object.assign(new Error('the database system is starting up'), { code: '57P03' }))).toBe(true);
    expect(isUnavailable(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isUnavailable(new Error('permission denied for table ir_module_module'))).toBe(false);
    expect(isUnavailable(new Error('odoo exited with code 2'))).toBe(false);
  });
});

describe('retryTransient', () => {
  it('tries a step again after a transient failure, and gives up after its last pause', async () => {
    let calls = 0;
    const flaky = async () => {
      if (++calls < 3) throw new Error('timeout exceeded when trying to connect');
      return 'done';
    };
    expect(await retryTransient(flaky, undefined, [1, 1, 1])).toBe('done');
    expect(calls).toBe(3);
    calls = 0;
    const down = async () => {
      calls++;
      throw new Error('timeout exceeded when trying to connect');
    };
    await expect(retryTransient(down, undefined, [1, 1])).rejects.toThrow('timeout exceeded');
    expect(calls).toBe(3);
  });

  it('does not try again a step that failed for its own reason', async () => {
    let calls = 0;
    const wrong = async () => {
      calls++;
      throw new Error('permission denied for table ir_module_module');
    };
    await expect(retryTransient(wrong, undefined, [1, 1])).rejects.toThrow('permission denied');
    expect(calls).toBe(1);
  });
});
