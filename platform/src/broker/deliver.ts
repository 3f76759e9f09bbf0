/**
 * One delivery attempt of an event to a subscriber over HTTP (binary mode)
 * and the classification of its answer with Knative's rules: 2xx done (a
 * CloudEvent in the answer is a reply), 5xx/404/408/409/429/timeout/no
 * answer retried, any other status dead-lettered at once.
 */
import type { CloudEvent } from 'cloudevents';
import { HttpError } from '../errors.ts';
import { toHttpBinary, type ReceivedAmqp } from './message.ts';
import { parseIncoming } from './validate.ts';

export type Outcome =
  { kind: 'done'; status: number; reply?: CloudEvent<unknown> } | { kind: 'retry'; status: number; reason: string; body: string } | { kind: 'dead'; status: number; reason: string; body: string };

const RETRYABLE = new Set([404, 408, 409, 429]);
const BODY_KEEP = 4096;

/** True for the statuses Knative's dispatcher retries. */
export function isRetryable(status: number): boolean {
  return status >= 500 || RETRYABLE.has(status);
}

function hasEvent(headers: Headers): boolean {
  return headers.has('ce-id') || /^application\/cloudevents\+json/i.test(headers.get('content-type') ?? '');
}

/** POSTs the message to `url` and classifies the answer; never throws. */
export async function deliver(url: string, msg: ReceivedAmqp, timeoutMs: number): Promise<Outcome> {
  const { headers, body } = toHttpBinary(msg);
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { ...headers, prefer: 'reply' }, body: new Uint8Array(body), signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const e = err as Error;
    const reason = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `unreachable: ${e.message}`;
    return { kind: 'retry', status: 0, reason, body: '' };
  }
  let text = '';
  try {
    text = await res.text();
  } catch (err) {
    return { kind: 'retry', status: res.status, reason: `answer cut: ${(err as Error).message}`, body: '' };
  }
  const kept = text.slice(0, BODY_KEEP);
  if (res.ok) {
    if (res.status !== 200 || !hasEvent(res.headers)) return { kind: 'done', status: res.status };
    const h: Record<string, string> = {};
    res.headers.forEach((v, k) => (h[k] = v));
    try {
      return { kind: 'done', status: res.status, reply: parseIncoming(h, text) };
    } catch (err) {
      const why = err instanceof HttpError ? `${err.message} ${JSON.stringify(err.fields ?? {})}` : (err as Error).message;
      return { kind: 'dead', status: res.status, reason: `invalid reply event: ${why}`, body: kept };
    }
  }
  if (isRetryable(res.status)) return { kind: 'retry', status: res.status, reason: `HTTP ${res.status}`, body: kept };
  return { kind: 'dead', status: res.status, reason: `HTTP ${res.status} (not retryable)`, body: kept };
}
