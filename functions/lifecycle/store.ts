/**
 * Lifecycle's tables in the billing database (account decision counters,
 * trials and their warnings), kept beside the one function that uses them so
 * index.ts reads as schema, decide, emit.
 */
import { db, type Tx } from '@saasodoo/platform/db/index';

/** The current decision counter of an account (0 before its first decision). */
export async function accountVersion(key: string): Promise<number> {
  const row = await db('billing').oneOrNone<{ version: string }>('SELECT version FROM lifecycle_account_versions WHERE account_key = $1', [key]);
  return Number(row?.version ?? 0);
}

/**
 * Counts one more decision on the account and answers the new counter;
 * the row lock it takes orders concurrent decisions on the same account.
 */
export async function bumpAccountVersion(t: Tx, key: string): Promise<number> {
  const now = await t.one<{ version: string }>(
    `INSERT INTO lifecycle_account_versions AS v (account_key, version) VALUES ($1, 1)
     ON CONFLICT (account_key) DO UPDATE SET version = v.version + 1 RETURNING version`,
    [key],
  );
  return Number(now.version);
}

export type TrialRow = { customer_id: string; subscription_id: string; ends_at: Date };

/** Trials with a subscription that end after `from` and by `until`. */
export function trialsEnding(from: Date, until: Date): Promise<TrialRow[]> {
  return db('billing').manyOrNone<TrialRow>(`SELECT customer_id, subscription_id, ends_at FROM trials WHERE subscription_id IS NOT NULL AND ends_at > $1 AND ends_at <= $2`, [from, until]);
}

/** Records a warning `daysLeft` before a trial's end; false when it was already sent (so it is sent once). */
export async function markTrialWarned(t: Tx, subscriptionId: string, daysLeft: number): Promise<boolean> {
  return Boolean(await t.oneOrNone('INSERT INTO trial_warnings (subscription_id, days_left) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1', [subscriptionId, daysLeft]));
}
