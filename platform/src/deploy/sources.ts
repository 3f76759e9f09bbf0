/**
 * The generated parts other modules own, read from their single source: the
 * Broker and Trigger objects from the broker's Knative generator
 * (platform/src/broker/knative.ts over events/triggers.yaml) and the instance
 * runtime's RBAC rules from the kubernetes driver, so the Role grants exactly
 * what the driver does.
 */
import { loadTriggers } from '@saasodoo/events/triggers';
import { knativeBroker, knativeTriggers } from '../broker/knative.ts';
import { RUNTIME_RBAC_RULES } from '../runtime/kubernetes/driver.ts';
import type { KubeObject } from './objects.ts';

export type PolicyRule = { apiGroups: string[]; resources: string[]; verbs: string[] };

export const BROKER = 'saasodoo';
export const DEAD_LETTER_BROKER = `${BROKER}-dead-letters`;
/** The RabbitmqBrokerConfig both brokers use (infra/base/platform/broker.yaml). */
export const BROKER_CONFIG = 'saasodoo-broker-config';

/** The Broker, its dead-letter Broker, and one Trigger per events/triggers.yaml row. */
export function eventingObjects(namespace: string): KubeObject[] {
  return [
    knativeBroker({ namespace, broker: BROKER, brokerConfig: BROKER_CONFIG }),
    knativeBroker({ namespace, broker: DEAD_LETTER_BROKER, brokerConfig: BROKER_CONFIG }),
    ...knativeTriggers(loadTriggers(), { namespace, broker: BROKER }),
  ];
}

/** The kubernetes runtime driver's rules, copied into plain arrays. */
export function runtimeRules(): PolicyRule[] {
  return RUNTIME_RBAC_RULES.map((r) => ({ apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] }));
}
