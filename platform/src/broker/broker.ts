/**
 * The local broker as one unit: AMQP connection, confirm publisher, ingress
 * and one dispatcher per trigger. The host starts it as a service; tests
 * start it on its own with a random port, their own triggers and a resolver
 * pointing at in-process fake subscribers.
 */
import type http from 'node:http';
import type { CloudEvent } from 'cloudevents';
import type { Trigger } from '@saasodoo/events/triggers';
import { log as rootLog, type Logger } from '../log.ts';
import { AmqpConnection } from './connection.ts';
import { Dispatcher, type SubscriberResolver } from './dispatcher.ts';
import { portOf, startIngress } from './ingress.ts';
import { Publisher } from './publisher.ts';

export type BrokerOptions = {
  rabbitUrl: string;
  /** Prefix of exchange and queue names (config BROKER_NAME). */
  name: string;
  /** Ingress port; 0 picks a free one. */
  port: number;
  triggers: Trigger[];
  resolve: SubscriberResolver;
  log?: Logger;
  onAccepted?: (ev: CloudEvent<unknown>) => void;
};

export type Broker = {
  /** Ingress URL: K_SINK for functions. */
  url: string;
  port: number;
  publisher: Publisher;
  amqp: AmqpConnection;
  dispatchers: Map<string, Dispatcher>;
  stop(): Promise<void>;
};

/** Connects to RabbitMQ (throws if unreachable at start), declares topology, starts ingress and dispatchers. */
export async function startBroker(o: BrokerOptions): Promise<Broker> {
  const log = (o.log ?? rootLog).child({ component: 'broker' });
  const amqp = new AmqpConnection(o.rabbitUrl, `broker:${o.name}`);
  await amqp.start();
  const publisher = new Publisher(amqp, o.name);
  const dispatchers = new Map<string, Dispatcher>();
  let server: http.Server | undefined;
  try {
    await publisher.start();
    for (const t of o.triggers) {
      const d = new Dispatcher({ trigger: t, broker: o.name, amqp, publisher, resolve: o.resolve, log });
      await d.start();
      dispatchers.set(t.name, d);
    }
    server = await startIngress({ port: o.port, publisher, log, onAccepted: o.onAccepted });
  } catch (err) {
    await Promise.all([...dispatchers.values()].map((d) => d.stop()));
    await amqp.stop();
    throw err;
  }
  const port = portOf(server);
  const srv = server;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    publisher,
    amqp,
    dispatchers,
    async stop() {
      await new Promise<void>((r) => {
        srv.close(() => r());
        srv.closeAllConnections();
      });
      await Promise.all([...dispatchers.values()].map((d) => d.stop()));
      await amqp.stop();
    },
  };
}
