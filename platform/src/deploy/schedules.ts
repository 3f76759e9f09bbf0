/**
 * The platform's clocks on Kubernetes: `com.saasodoo.health.tick` (health
 * probes) and `com.saasodoo.schedule.daily` (daily backups, trial warnings).
 *
 * Why CronJobs and not PingSources: a PingSource always sends type
 * `dev.knative.sources.ping` with constant data, while these events are
 * catalogue types whose data carries the tick time (`{at}`), validated by
 * every consumer. A CronJob posts the real event to K_SINK, which the
 * saasodoo-schedule-k-sink SinkBinding injects (the pattern the SinkBinding
 * docs use), so the broker and the triggers see exactly what the local host
 * emits.
 */
import { catalog } from '@saasodoo/events/catalog';
import { PLATFORM_NAMESPACE, type KubeObject } from './objects.ts';

export type Schedule = {
  name: string;
  /** Short catalogue type, e.g. `health.tick`. */
  type: 'health.tick' | 'schedule.daily';
  /** Cron, UTC (Kubernetes CronJobs are minute-granular). */
  cron: string;
  /** Send every this many seconds within each minute (sub-minute ticks); 0 = once per run. */
  everySeconds?: number;
};

export const SCHEDULES: Schedule[] = [
  { name: 'health-tick', type: 'health.tick', cron: '* * * * *', everySeconds: 30 },
  { name: 'schedule-daily', type: 'schedule.daily', cron: '0 3 * * *' },
];

export const SCHEDULE_IMAGE = 'curlimages/curl:8.11.1';

/** Shell that POSTs one binary-mode CloudEvent of `type` from `source` to $K_SINK. */
function sendScript(type: string, source: string): string {
  return [
    'at=$(date -u +%Y-%m-%dT%H:%M:%SZ)',
    `curl -fsS -o /dev/null -X POST "$K_SINK" -H 'ce-specversion: 1.0' -H 'ce-type: ${type}' -H 'ce-source: ${source}' \\`,
    `  -H "ce-id: $(cat /proc/sys/kernel/random/uuid)" -H "ce-time: $at" -H 'content-type: application/json' -d "{\\"at\\":\\"$at\\"}"`,
    `echo "sent ${type} $at"`,
  ].join('\n');
}

function script(s: Schedule): string {
  const type = `com.saasodoo.${s.type}`;
  const send = `send() {\n  ${sendScript(type, catalog[s.type].source).replace(/\n/g, '\n  ')}\n}`;
  if (!s.everySeconds) return `set -eu\n${send}\nsend\n`;
  return `set -eu\n${send}\ni=0\nwhile [ $i -lt 60 ]; do\n  send\n  i=$((i + ${s.everySeconds}))\n  if [ $i -lt 60 ]; then sleep ${s.everySeconds}; fi\ndone\n`;
}

/** The CronJobs that emit the schedule events. */
export function scheduleCronJobs(namespace = PLATFORM_NAMESPACE): KubeObject[] {
  return SCHEDULES.map((s) => ({
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: s.name, namespace, labels: { 'app.kubernetes.io/name': s.name, 'app.kubernetes.io/part-of': 'saasodoo' } },
    spec: {
      schedule: s.cron,
      concurrencyPolicy: 'Forbid',
      successfulJobsHistoryLimit: 1,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        metadata: { labels: { 'saasodoo.io/role': 'schedule' } },
        spec: {
          backoffLimit: 1,
          activeDeadlineSeconds: 120,
          template: {
            metadata: { labels: { 'saasodoo.io/role': 'schedule', 'app.kubernetes.io/name': s.name } },
            spec: {
              serviceAccountName: 'saasodoo-schedule',
              restartPolicy: 'Never',
              containers: [
                {
                  name: 'emit',
                  image: SCHEDULE_IMAGE,
                  command: ['/bin/sh', '-c', script(s)],
                  resources: { requests: { cpu: '5m', memory: '8Mi' }, limits: { memory: '32Mi' } },
                  securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, runAsUser: 100 },
                },
              ],
            },
          },
        },
      },
    },
  }));
}
