/**
 * What a host service is: started with the host context, returns a stopper.
 * Kept apart from the list in services.ts so the services import this file
 * and the list imports them, with no cycle.
 */
import type { Config } from '../config.ts';
import type { InstanceRouter } from './gateway.ts';
import type { Supervisor } from './supervisor.ts';

export type HostContext = {
  config: Config;
  supervisor: Supervisor;
  /** Environment every function process gets (K_SINK, KILLBILL_URL, SMTP_URL...): services may add to it before functions start. */
  functionEnv: Record<string, string>;
  /** Set by the instance runtime so the gateway can route `<sub>.localhost`. */
  setInstanceRouter(router: InstanceRouter): void;
};

export type RunningService = { stop(): Promise<void>; endpoint?: string };

export type HostService = {
  name: string;
  /** 'before' services start before the functions (the broker, simulators); 'after' ones need the gateway. */
  phase: 'before' | 'after';
  enabled?(c: Config): boolean;
  start(ctx: HostContext): Promise<RunningService>;
};
