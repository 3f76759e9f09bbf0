/** The state machine of README.md 1-2, read as a table: what each status allows and where each action leads. */
import { describe, expect, it } from 'vitest';
import { ACTION_STATUS, ACTIONS, allowedActions, SETTLED, STATUSES, type Action, type Status } from './states.ts';

/** README.md 2, customer view; statuses not listed (in progress) allow nothing. */
const TABLE: Partial<Record<Status, Action[]>> = {
  running: ['stop', 'restart', 'backup', 'delete'],
  stopped: ['start', 'backup', 'restore', 'delete'],
  error: ['start', 'restore', 'delete'],
  suspended: ['delete'],
  pending_payment: ['delete'],
};

describe('allowedActions', () => {
  it.each(STATUSES)('%s: the customer gets exactly the README row', (status) => {
    expect(allowedActions(status, false).sort()).toEqual([...(TABLE[status] ?? [])].sort());
  });

  it.each(STATUSES)('%s: an admin gets the same row, plus retry in error only', (status) => {
    const extra: Action[] = status === 'error' ? ['retry'] : [];
    expect(allowedActions(status, true).sort()).toEqual([...(TABLE[status] ?? []), ...extra].sort());
  });

  it('nothing is allowed while an operation is in progress or after termination', () => {
    for (const s of ['provisioning', 'stopping', 'starting', 'restarting', 'backing_up', 'restoring', 'terminating', 'terminated'] as const) {
      expect(allowedActions(s, true), s).toEqual([]);
    }
  });

  it('answers a fresh list: a caller changing it cannot change the table', () => {
    allowedActions('running', false).push('retry');
    expect(allowedActions('running', false)).not.toContain('retry');
  });
});

describe('ACTION_STATUS', () => {
  it('every action but delete has a working status, and it is a transient one (not settled)', () => {
    for (const a of ACTIONS.filter((x) => x !== 'delete')) {
      const s = ACTION_STATUS[a];
      expect(STATUSES, a).toContain(s);
      expect(SETTLED.has(s), `${a} → ${s}`).toBe(false);
    }
  });

  it('an action never lands where it is allowed again (no double start while starting)', () => {
    for (const a of ACTIONS.filter((x) => x !== 'delete')) expect(allowedActions(ACTION_STATUS[a], true), a).not.toContain(a);
  });
});

describe('SETTLED', () => {
  it('is the six statuses of README.md 1 in which nothing runs', () => {
    expect([...SETTLED].sort()).toEqual(['error', 'pending_payment', 'running', 'stopped', 'suspended', 'terminated']);
  });
});
