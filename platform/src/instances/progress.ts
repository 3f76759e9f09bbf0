/**
 * Progress of a long operation: the last step is kept on the instance row
 * (the portal polls it) and sent as `instance.progress` through the outbox.
 */
import { cleanText } from '@saasodoo/events';
import { enqueue, transact } from '../outbox.ts';
import { scrubString } from '../log.ts';
import type { InstanceRow } from './repository.ts';

export async function reportProgress(row: Pick<InstanceRow, 'id' | 'customer_id'>, operation: string, step: string, index: number, total: number, traceparent?: string): Promise<void> {
  const progress = { operation, step, index, total, at: new Date().toISOString() };
  await transact('instance', async (t) => {
    await t.none('UPDATE instances SET progress = $2, updated_at = now() WHERE id = $1', [row.id, JSON.stringify(progress)]);
    await enqueue(t, 'instance.progress', { instanceId: row.id, customerId: row.customer_id, operation, step, index, total }, { subject: row.id, traceparent });
  });
}

/**
 * A failure reason safe to store, show and send: the error's own message
 * (driver errors are written to be shown), scrubbed of anything secret-like
 * and bounded, without control characters (the text rule would refuse the event).
 */
export function safeReason(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  // Cleaned after the cut, which may split a surrogate pair.
  return (
    cleanText(
      scrubString(msg)
        .replace(/PASSWORD\s+'[^']*'/gi, "PASSWORD '[redacted]'")
        .slice(0, 300),
    ) || 'unknown error'
  );
}
