/** The inbox's dedupe key (inbox.ts): the same Kill Bill delivery always gets the same event id, any other a new one. */
import type { KillbillNotification } from '@saasodoo/events';
import { describe, expect, it } from 'vitest';
import { dedupeKey } from './inbox.ts';

const n: KillbillNotification = {
  eventType: 'INVOICE_PAYMENT_SUCCESS',
  accountId: '3f1b8a0e-2c4d-4e6f-8a9b-0c1d2e3f4a5b',
  objectType: 'INVOICE',
  objectId: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d',
  metaData: '{"paymentId":"p1"}',
} as KillbillNotification;

describe('dedupeKey', () => {
  it('is a UUID (version 8, RFC variant), so it can be the CloudEvent id and the outbox key', () => {
    expect(dedupeKey('t1', n)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('is the same for a redelivery of the same notification', () => {
    expect(dedupeKey('t1', { ...n })).toBe(dedupeKey('t1', n));
  });

  it('differs for another tenant, another event type, another object, other metadata', () => {
    const base = dedupeKey('t1', n);
    const others = [
      dedupeKey('t2', n),
      dedupeKey('t1', { ...n, eventType: 'INVOICE_PAYMENT_FAILED' } as KillbillNotification),
      dedupeKey('t1', { ...n, objectId: '00000000-0000-4000-8000-000000000000' }),
      dedupeKey('t1', { ...n, metaData: '{"paymentId":"p2"}' }),
    ];
    expect(new Set([base, ...others]).size).toBe(5);
  });
});
