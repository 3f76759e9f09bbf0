/**
 * One AMQP connection that comes back by itself. RabbitMQ restarts and
 * network cuts are normal events for the broker: while the connection is
 * down `connected` is false (the ingress answers 503), and once it returns
 * every registered `onConnect` hook runs again to redeclare topology and
 * restart consumers.
 */
import amqp, { type ChannelModel } from 'amqplib';
import { log as rootLog, scrubString } from '../log.ts';

export type ConnectHook = (conn: ChannelModel) => Promise<void>;

export class AmqpConnection {
  private conn?: ChannelModel;
  private readonly hooks: ConnectHook[] = [];
  private stopped = false;
  private retryTimer?: NodeJS.Timeout;
  private delay = 200;
  private readonly log;
  private waiters: (() => void)[] = [];

  constructor(
    readonly url: string,
    readonly label = 'broker',
  ) {
    this.log = rootLog.child({ component: label, amqp: scrubString(url) });
  }

  get connected(): boolean {
    return this.conn !== undefined;
  }

  /** The live connection, or undefined while reconnecting. */
  get current(): ChannelModel | undefined {
    return this.conn;
  }

  /** Registers a hook run on every (re)connect, and at once if already connected. */
  async onConnect(hook: ConnectHook): Promise<void> {
    this.hooks.push(hook);
    if (this.conn) await hook(this.conn);
  }

  /** Connects once; throws if RabbitMQ does not answer (start-up should fail loudly). Reconnects by itself afterwards. */
  async start(): Promise<void> {
    await this.connect();
  }

  /** Resolves when connected (immediately if already). */
  whenConnected(): Promise<void> {
    if (this.conn) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  private async connect(): Promise<void> {
    const conn = await amqp.connect(this.url, { timeout: 5000, noDelay: true, clientProperties: { connection_name: this.label } });
    conn.on('error', (err: Error) => this.log.warn({ err: err.message }, 'amqp connection error'));
    conn.on('close', () => {
      if (this.conn !== conn) return;
      this.conn = undefined;
      if (this.stopped) return;
      this.log.warn('amqp connection lost; reconnecting');
      this.scheduleReconnect();
    });
    this.conn = conn;
    try {
      for (const hook of this.hooks) await hook(conn);
    } catch (err) {
      this.conn = undefined;
      await conn.close().catch(() => {});
      throw err;
    }
    this.delay = 200;
    const w = this.waiters;
    this.waiters = [];
    w.forEach((r) => r());
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(async () => {
      this.retryTimer = undefined;
      try {
        await this.connect();
        this.log.info('amqp connection restored');
      } catch (err) {
        this.delay = Math.min(this.delay * 2, 3000);
        this.log.debug({ err: (err as Error).message }, 'amqp reconnect failed');
        this.scheduleReconnect();
      }
    }, this.delay);
    this.retryTimer.unref();
  }

  /** Closes for good (no reconnect). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const c = this.conn;
    this.conn = undefined;
    await c?.close().catch(() => {});
  }
}
