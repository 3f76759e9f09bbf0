/**
 * The pieces the local host runs besides the functions and the gateway
 * (broker, Kill Bill simulator, SMTP catcher, instance runtime, portal,
 * schedules), in the order they start; they stop in reverse. What a service
 * is: host-service.ts.
 */
import type { HostService } from './host-service.ts';
import { smtpCatcherService } from '../mail/catcher-service.ts';
import { localRuntimeService } from '../runtime/local/service.ts';
import { dockerRuntimeService } from '../runtime/docker/service.ts';
import { brokerService } from '../broker/service.ts';
import { schedulesService } from '../broker/schedules.ts';
import { killbillSimulatorService } from '../killbill-sim/host.ts';
import { portalService } from './portal.ts';

export type { HostContext, HostService, RunningService } from './host-service.ts';

export const hostServices: HostService[] = [brokerService, killbillSimulatorService, smtpCatcherService, localRuntimeService, dockerRuntimeService, schedulesService, portalService];
