/**
 * `runtime()`: the driver config().RUNTIME_DRIVER names. Functions call this
 * rather than constructing a driver so the same code runs locally and on the
 * cluster. The Kubernetes and Docker drivers (and their clients) are loaded
 * only when chosen.
 */
import { config } from '../config.ts';
import type { RuntimeDriver } from './types.ts';

export * from './types.ts';

let cached: Promise<RuntimeDriver> | undefined;

/** The process's runtime driver (one per process, created on first use). */
export function runtime(): Promise<RuntimeDriver> {
  cached ??= (async () => {
    if (config().RUNTIME_DRIVER === 'kubernetes') {
      const { KubernetesDriver } = await import('./kubernetes/driver.ts');
      return KubernetesDriver.fromConfig();
    }
    if (config().RUNTIME_DRIVER === 'docker') {
      const { DockerDriver } = await import('./docker/driver.ts');
      return DockerDriver.fromConfig();
    }
    const { LocalDriver } = await import('./local/driver.ts');
    return LocalDriver.fromConfig();
  })();
  return cached;
}

/** Forget the driver (tests that change RUNTIME_DRIVER or ports). */
export function resetRuntime(): void {
  cached = undefined;
}
