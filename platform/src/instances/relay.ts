/**
 * The instance service's outbox relay, one per process: every function that
 * commits events calls `kickOutbox()` after the commit so they leave at once
 * (the relay's timer is the safety net).
 */
import { db } from '../db/index.ts';
import { startRelay, type Relay } from '../outbox.ts';

let relay: Relay | undefined;

/** Publish pending outbox rows now (starts the relay on first use). */
export function kickOutbox(): void {
  if (relay) relay.kick();
  else relay = startRelay(db('instance'));
}

/** Stops the relay after a last pass (function shutdown, tests). */
export async function stopOutbox(): Promise<void> {
  const r = relay;
  relay = undefined;
  await r?.stop();
}
