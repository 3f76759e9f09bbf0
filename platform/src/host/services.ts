/**
 * The pieces the local host runs besides the functions and the gateway
 * (broker, Kill Bill simulator, SMTP catcher, instance runtime, portal,
 * schedules). Each starts with the host context and returns a stopper; they
 * start in this order and stop in reverse.
 */
import type { Config } from '../config.ts';
import type { InstanceRouter } from './gateway.ts';
import type { Supervisor } from './supervisor.ts';
import { smtpCatcherService } from '../mail/catcher-service.ts';
import { localRuntimeService } from '../runtime/local/service.ts';
import { dockerRuntimeService } from '../runtime/docker/service.ts';
import { brokerService } from '../broker/service.ts';
import { schedulesService } from '../broker/schedules.ts';
import { killbillSimulatorService } from '../killbill-sim/host.ts';
import { portalService } from './portal.ts';

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

export const hostServices: HostService[] = [brokerService, killbillSimulatorService, smtpCatcherService, localRuntimeService, dockerRuntimeService, schedulesService, portalService];
