/**
 * Production routing from the same table as local routing: turns
 * events/triggers.yaml into Knative Eventing `Trigger` objects for the
 * RabbitMQ broker (class annotation, exact-match `filter.attributes`,
 * delivery spec, parallelism annotation), and the Broker they attach to. The
 * deploy step applies them; nothing here talks to a cluster.
 */
import type { Trigger } from '@saasodoo/events/triggers';

export const BROKER_CLASS = 'RabbitMQBroker';
export const PARALLELISM_ANNOTATION = 'rabbitmq.eventing.knative.dev/parallelism';

export type KnativeOptions = {
  namespace: string;
  /** Name of the Broker object (default `saasodoo`). */
  broker?: string;
  /**
   * Where events that exhaust their retries go. Default: a second broker
   * `<broker>-dead-letters` whose queues keep them for inspection (Knative's
   * RabbitMQ dispatcher has no local dead-letter queue of its own).
   */
  deadLetterSink?: { ref: { apiVersion: string; kind: string; name: string; namespace?: string } } | { uri: string };
  /** RabbitmqBrokerConfig the Broker uses (default `<broker>-config`). */
  brokerConfig?: string;
};

export type KnativeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
};

const LABELS = { 'app.kubernetes.io/part-of': 'saasodoo', 'app.kubernetes.io/managed-by': 'saasodoo-platform' };

/** One Knative Trigger per routing row. */
export function knativeTriggers(triggers: Trigger[], o: KnativeOptions): KnativeObject[] {
  const broker = o.broker ?? 'saasodoo';
  const deadLetterSink = o.deadLetterSink ?? { ref: { apiVersion: 'eventing.knative.dev/v1', kind: 'Broker', name: `${broker}-dead-letters`, namespace: o.namespace } };
  return triggers.map((t) => ({
    apiVersion: 'eventing.knative.dev/v1',
    kind: 'Trigger',
    metadata: {
      name: t.name,
      namespace: o.namespace,
      labels: { ...LABELS, 'saasodoo.io/subscriber': t.subscriber },
      annotations: {
        'eventing.knative.dev/broker.class': BROKER_CLASS,
        [PARALLELISM_ANNOTATION]: String(t.parallelism),
      },
    },
    spec: {
      broker,
      filter: { attributes: { ...t.filter.attributes } },
      subscriber: { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: t.subscriber, namespace: o.namespace } },
      delivery: {
        retry: t.delivery.retry,
        backoffPolicy: t.delivery.backoffPolicy,
        backoffDelay: t.delivery.backoffDelay,
        timeout: t.delivery.timeout,
        deadLetterSink,
      },
    },
  }));
}

/** The RabbitMQ-class Broker the triggers attach to. */
export function knativeBroker(o: KnativeOptions): KnativeObject {
  const broker = o.broker ?? 'saasodoo';
  return {
    apiVersion: 'eventing.knative.dev/v1',
    kind: 'Broker',
    metadata: { name: broker, namespace: o.namespace, labels: LABELS, annotations: { 'eventing.knative.dev/broker.class': BROKER_CLASS } },
    spec: {
      config: { apiVersion: 'eventing.knative.dev/v1alpha1', kind: 'RabbitmqBrokerConfig', name: o.brokerConfig ?? `${broker}-config` },
    },
  };
}
