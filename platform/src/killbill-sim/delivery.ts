/**
 * Push-notification delivery as Kill Bill's PushNotificationListener does it
 * (reference/killbill.md 1.3, 2): POST with `User-Agent: KillBill/1.0`, the
 * JDK client's h2c upgrade offer on plain http, 15 s timeout, any non-2xx or
 * error retried on a schedule (default 15m,30m,2h,12h,1d) then dropped.
 * Pending notifications live in the database, are sent concurrently and in
 * no particular order.
 */
import http from 'node:http';
import https from 'node:https';
import type { Db } from '../db/index.ts';
import { log } from '../log.ts';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `15m,30m,2h` → milliseconds. */
export function parseSchedule(s: string): number[] {
  return s.split(',').map((part) => {
    const m = part.trim().match(/^(\d+)(ms|s|m|h|d)$/);
    if (!m) throw new Error(`bad retry schedule entry ${part}`);
    return Number(m[1]) * UNITS[m[2]];
  });
}

const TIMEOUT_MS = 15_000;

/** One POST the way Kill Bill's Java client sends it; resolves to the status code. */
export function post(url: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? https : http;
    const headers: http.OutgoingHttpHeaders = {
      'User-Agent': 'KillBill/1.0',
      'Content-Type': 'application/json; charset=UTF-8',
      'Content-Length': Buffer.byteLength(body),
    };
    if (u.protocol === 'http:') {
      // java.net.http.HttpClient offers HTTP/2 on plain http this way.
      headers.Connection = 'Upgrade, HTTP2-Settings';
      headers.Upgrade = 'h2c';
      headers['HTTP2-Settings'] = 'AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA';
    }
    const req = lib.request(u, { method: 'POST', headers, timeout: TIMEOUT_MS, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 101);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

type Row = { id: number; url: string; body: string; attempt: number };

export class Delivery {
  private timer?: NodeJS.Timeout;
  private inFlight = new Set<number>();
  private running?: Promise<void>;
  private stopped = false;
  private schedule: number[];

  constructor(
    private readonly db: Db,
    schedule: string,
    private readonly intervalMs = 250,
  ) {
    this.schedule = parseSchedule(schedule);
  }

  start(): void {
    this.timer = setInterval(() => this.kick(), this.intervalMs);
    this.timer.unref();
  }

  setSchedule(s: string): void {
    this.schedule = parseSchedule(s);
  }

  /** Sends what is due now (called after every change and on a timer). */
  kick(): void {
    if (this.stopped || this.running) return;
    this.running = this.pass().finally(() => (this.running = undefined));
  }

  private async pass(): Promise<void> {
    try {
      // Claim the rows (next attempt pushed out) so a concurrent pass cannot send one a second time
      // after its delivery was recorded; deliver() then sets the real outcome.
      const rows = await this.db.manyOrNone<Row>(
        `UPDATE kb_notifications SET next_attempt_at = now() + interval '5 minutes'
         WHERE id IN (SELECT id FROM kb_notifications WHERE delivered_at IS NULL AND dropped_at IS NULL AND next_attempt_at <= now()
                      ORDER BY random() LIMIT 500 FOR UPDATE SKIP LOCKED)
         RETURNING id, url, body, attempt`,
      );
      for (const r of rows) {
        if (this.inFlight.has(r.id)) continue;
        this.inFlight.add(r.id);
        void this.deliver(r).finally(() => this.inFlight.delete(r.id));
      }
    } catch (err) {
      if (!this.stopped) log.warn({ err: (err as Error).message }, 'killbill-sim: delivery pass failed');
    }
  }

  private async deliver(r: Row): Promise<void> {
    let status = 0;
    let error = '';
    try {
      status = await post(r.url, typeof r.body === 'string' ? r.body : JSON.stringify(r.body));
    } catch (err) {
      error = (err as Error).message;
    }
    if (this.stopped) return;
    const attempt = r.attempt + 1;
    try {
      if (status >= 200 && status < 300) {
        await this.db.none('UPDATE kb_notifications SET delivered_at = now(), attempt = $2, last_status = $3 WHERE id = $1', [r.id, attempt, String(status)]);
      } else if (attempt > this.schedule.length) {
        log.warn({ id: r.id, attempt }, 'killbill-sim: Max attempt number reached for push notification');
        await this.db.none('UPDATE kb_notifications SET dropped_at = now(), attempt = $2, last_status = $3 WHERE id = $1', [r.id, attempt, status ? String(status) : error]);
      } else {
        const delay = this.schedule[attempt - 1];
        await this.db.none(`UPDATE kb_notifications SET attempt = $2, last_status = $3, next_attempt_at = now() + ($4 || ' milliseconds')::interval WHERE id = $1`, [
          r.id,
          attempt,
          status ? String(status) : error,
          String(delay),
        ]);
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'killbill-sim: could not record delivery');
    }
  }

  /**
   * Waits until the tenant has no push notification waiting for its first attempt (Kill Bill's bus
   * still holding the event), at most `timeoutMs`; true when drained. Retries are future
   * notifications, which Kill Bill's queue check does not wait for either.
   */
  async drained(apiKey: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { n } = await this.db.one<{ n: number }>(
        `SELECT count(*)::int AS n FROM kb_notifications n JOIN kb_tenants t ON t.id = n.tenant_id
         WHERE t.api_key = $1 AND n.attempt = 0 AND n.delivered_at IS NULL AND n.dropped_at IS NULL`,
        [apiKey],
      );
      if (n === 0) return true;
      if (Date.now() >= deadline || this.stopped) return false;
      this.kick();
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Counts of notifications by delivery state (status, tests). */
  async counts(): Promise<{ pending: number; delivered: number; dropped: number; inFlight: number }> {
    const r = await this.db.one(
      `SELECT count(*) FILTER (WHERE delivered_at IS NULL AND dropped_at IS NULL) AS pending,
              count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,
              count(*) FILTER (WHERE dropped_at IS NOT NULL) AS dropped FROM kb_notifications`,
    );
    return { ...r, inFlight: this.inFlight.size };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
