/**
 * The Knative output of the routing table: every generated Trigger is valid
 * against the Trigger CRD's openAPIV3Schema (skipped, saying so, when the
 * reference schemas are absent) and carries the RabbitMQ broker specifics.
 */
import fs from 'node:fs';
import { Ajv } from 'ajv';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadTriggers, type Trigger } from '@saasodoo/events/triggers';
import { knativeBroker, knativeTriggers, PARALLELISM_ANNOTATION } from '@saasodoo/platform/broker/knative';
import { schemaFile } from '../../helpers/schemas.ts';

const sample: Trigger[] = [
  {
    name: 'ordered',
    filter: { attributes: { type: 'com.saasodoo.instance.provision' } },
    subscriber: 'provision',
    delivery: { retry: 5, backoffPolicy: 'exponential', backoffDelay: 'PT0.5S', timeout: 'PT30S' },
    parallelism: 1,
  },
  {
    name: 'wide',
    filter: { attributes: { type: 'com.saasodoo.health.tick', source: '/saasodoo/host' } },
    subscriber: 'health-probe',
    delivery: { retry: 2, backoffPolicy: 'linear', backoffDelay: 'PT1S', timeout: 'PT10S' },
    parallelism: 20,
  },
];
const all = [...sample, ...loadTriggers()];

describe('knative triggers', () => {
  it('carries filter, subscriber, delivery, dead-letter sink and the RabbitMQ annotations', () => {
    const [a, b] = knativeTriggers(sample, { namespace: 'saasodoo' });
    expect(a.metadata.annotations).toEqual({ 'eventing.knative.dev/broker.class': 'RabbitMQBroker', [PARALLELISM_ANNOTATION]: '1' });
    expect(b.metadata.annotations?.[PARALLELISM_ANNOTATION]).toBe('20');
    expect(a.spec).toMatchObject({
      broker: 'saasodoo',
      filter: { attributes: { type: 'com.saasodoo.instance.provision' } },
      subscriber: { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'provision' } },
      delivery: { retry: 5, backoffPolicy: 'exponential', backoffDelay: 'PT0.5S', timeout: 'PT30S', deadLetterSink: { ref: { kind: 'Broker', name: 'saasodoo-dead-letters' } } },
    });
    expect(b.spec.filter).toEqual({ attributes: { type: 'com.saasodoo.health.tick', source: '/saasodoo/host' } });
    expect(knativeBroker({ namespace: 'saasodoo' }).metadata.annotations).toEqual({ 'eventing.knative.dev/broker.class': 'RabbitMQBroker' });
  });

  const crd = schemaFile('crd-knative-eventing-triggers.yaml');
  it.skipIf(!crd)('validates against the Trigger CRD openAPIV3Schema', () => {
    const doc = YAML.parse(fs.readFileSync(crd!, 'utf8'));
    const version = doc.spec.versions.find((v: { name: string }) => v.name === 'v1');
    const ajv = new Ajv({ strict: false, allErrors: true });
    const validate = ajv.compile(version.schema.openAPIV3Schema);
    const objects = knativeTriggers(all, { namespace: 'saasodoo' });
    expect(objects.length).toBe(all.length);
    for (const o of objects) {
      const ok = validate(o);
      expect(ok, `${o.metadata.name}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
    // The schema must actually bite: a wrong type is refused.
    expect(validate({ ...objects[0], spec: { ...objects[0].spec, delivery: { retry: 'many' } } })).toBe(false);
  });
});
