/**
 * The two generated parts other modules own, read from their single source:
 * Knative Triggers from the broker's generator (platform/src/broker/knative.ts,
 * which reads events/triggers.yaml) and the instance runtime's RBAC rules
 * from the kubernetes driver (platform/src/runtime/kubernetes/), so the Role
 * grants exactly what the driver does.
 */
import type { KubeObject } from './objects.ts';

export type PolicyRule = { apiGroups: string[]; resources: string[]; verbs: string[] };

// Loaded by path at run time so this module compiles while those modules are being written.
const TRIGGERS_MODULE = '../broker/knative.ts';
const RBAC_MODULE = '../runtime/kubernetes/rbac.ts';

async function load(spec: string, what: string): Promise<Record<string, unknown>> {
  try {
    return (await import(spec)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`Cannot load ${what} (${spec.replace('../', 'platform/src/')}): ${(err as Error).message}`);
  }
}

function pick<T>(mod: Record<string, unknown>, names: string[], what: string): T {
  for (const n of names) if (mod[n] !== undefined) return mod[n] as T;
  throw new Error(`${what}: none of the exports ${names.join(', ')} found`);
}

/** One Knative Trigger per events/triggers.yaml row, in `namespace`, on the saasodoo Broker. */
export async function triggerObjects(namespace: string): Promise<KubeObject[]> {
  const mod = await load(TRIGGERS_MODULE, 'the Knative Trigger generator');
  const gen = pick<(o?: unknown) => KubeObject[] | Promise<KubeObject[]>>(mod, ['knativeTriggers', 'generateTriggers', 'triggerObjects', 'default'], 'platform/src/broker/knative.ts');
  return await gen({ namespace, broker: 'saasodoo' });
}

/** The kubernetes runtime driver's rules (verbs per resource), as it declares them. */
export async function runtimeRules(): Promise<PolicyRule[]> {
  const mod = await load(RBAC_MODULE, "the kubernetes runtime driver's RBAC rules");
  return pick<PolicyRule[]>(mod, ['RUNTIME_RBAC_RULES', 'RBAC_RULES', 'rbacRules', 'DRIVER_RULES'], 'platform/src/runtime/kubernetes/rbac.ts');
}
