import { billingStatus, instanceStatus } from '@saasodoo/events/catalog';

/**
 * The instance state machine (platform/src/instances/README.md 1-2): which customer action is allowed in
 * which status, and what each accepted action does (the transient status it
 * sets and the command it sends). Pure data and functions, so the table is
 * unit-tested on its own and `instance-action` just applies it.
 */
// The catalogue's list, so the events and the state machine never disagree ('migrating': a database move, instances/move.ts).
export const STATUSES = instanceStatus.options;
export type Status = (typeof STATUSES)[number];

export const BILLING_STATUSES = billingStatus.options;
export type BillingStatus = (typeof BILLING_STATUSES)[number];

export const HEALTH = ['unknown', 'healthy', 'unhealthy'] as const;
export type Health = (typeof HEALTH)[number];

export const ACTIONS = ['start', 'stop', 'restart', 'backup', 'restore', 'delete', 'retry'] as const;
export type Action = (typeof ACTIONS)[number];

/** The table of platform/src/instances/README.md 2, customer view. `retry` is added for admins in `error`. */
const ALLOWED: Partial<Record<Status, readonly Action[]>> = {
  running: ['stop', 'restart', 'backup', 'delete'],
  stopped: ['start', 'backup', 'restore', 'delete'],
  error: ['start', 'restore', 'delete'],
  suspended: ['delete'],
  pending_payment: ['delete'],
};

/** The actions a caller may take on an instance in `status`. */
export function allowedActions(status: Status, isAdmin: boolean): Action[] {
  const list = [...(ALLOWED[status] ?? [])];
  if (isAdmin && status === 'error') list.push('retry');
  return list;
}

/** The status an accepted action puts the instance in while the command runs. */
export const ACTION_STATUS: Record<Exclude<Action, 'delete'>, Status> = {
  start: 'starting',
  stop: 'stopping',
  restart: 'restarting',
  backup: 'backing_up',
  restore: 'restoring',
  retry: 'provisioning',
};

/** Statuses in which nothing is in progress: transient ones return to one of these. */
export const SETTLED: ReadonlySet<Status> = new Set(['pending_payment', 'running', 'stopped', 'suspended', 'error', 'terminated']);
