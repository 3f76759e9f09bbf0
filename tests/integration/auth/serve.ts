/** Serves function modules in-process and calls them like the gateway does (JSON, X-Forwarded-For). */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFunction } from '@saasodoo/platform/host/run-function';
import type { FaasFunction } from '@saasodoo/platform/fn';
import { db } from '@saasodoo/platform/db/index';
import { freePort } from '../../helpers/ports.ts';

export const AUTH_FUNCTIONS = ['signup', 'verify-email', 'login', 'refresh', 'logout', 'password-reset', 'account'] as const;

export type Served = { call: Caller; close(): Promise<void> };
export type Reply = { status: number; body: any; headers: Headers };
export type Caller = (fn: string, o?: { method?: 'GET' | 'POST'; body?: unknown; token?: string; ip?: string; headers?: Record<string, string> }) => Promise<Reply>;

/** Starts each named function of functions/<name> (and any `extra` function objects) on a random port. */
export async function serveFunctions(names: readonly string[], extra: Record<string, FaasFunction> = {}): Promise<Served> {
  const servers = new Map<string, Server>();
  for (const [name, fn] of Object.entries(extra)) servers.set(name, await startFunction(fn, await freePort()));
  for (const name of names) {
    const mod = (await import(`../../../functions/${name}/index.ts`)) as { default: FaasFunction };
    // faas-js-runtime treats port 0 as "use the default 8080": ask the OS for a free one.
    servers.set(name, await startFunction(mod.default, await freePort()));
  }
  const call: Caller = async (fn, o = {}) => {
    const server = servers.get(fn);
    if (!server) throw new Error(`${fn} is not served`);
    const headers: Record<string, string> = { 'x-forwarded-for': o.ip ?? '10.0.0.1', ...(o.headers ?? {}) };
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
      method: o.method ?? (o.body === undefined && fn === 'account' ? 'GET' : 'POST'),
      headers,
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };
  return {
    call,
    close: async () => {
      await Promise.all([...servers.values()].map((s) => new Promise((r) => s.close(r))));
    },
  };
}

export type OutboxEvent = { type: string; subject: string | null; data: any };

/** The events the auth functions wrote to their outbox, oldest first (short type names). */
export async function outboxEvents(): Promise<OutboxEvent[]> {
  // The audit trail's entries travel through the same outbox; audit-log.test.ts checks those.
  const rows = await db('auth').manyOrNone<OutboxEvent>(`SELECT type, subject, data FROM outbox WHERE type <> 'com.saasodoo.audit.action' ORDER BY created_at, id`);
  return rows.map((r) => ({ ...r, type: r.type.replace(/^com\.saasodoo\./, '') }));
}

/** The token in a mail link of an outbox event. */
export function linkToken(url: string): string {
  return new URL(url).searchParams.get('token')!;
}

let n = 0;
/** A fresh client IP, so one test's rate-limit counters never touch another's. */
export function freshIp(): string {
  n++;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}
