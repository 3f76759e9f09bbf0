/**
 * The status-page server on Kubernetes: one small shared Deployment in the
 * instances namespace whose Service has a port per page state. The driver
 * points a suspended, stopped or starting (not yet ready) instance's
 * IngressRoute at the port named after the state (objects.ts `ingressRoute`),
 * so the customer gets the same page and status as on the local runtime (403
 * suspended, 503 stopped or starting) instead of Traefik's bare 503 for a
 * Deployment with no ready pod.
 *
 * Why a port per state and not a Traefik Middleware: the route change stays
 * within the IngressRoute (checked against its CRD schema), and it needs no
 * extra object per instance nor any Middleware, whose CRD schema we do not
 * have. The pages are rendered from status-page.ts into the ConfigMap by
 * `platform render` (generated/status-pages.yaml), so both runtimes share
 * one wording. Only deploy code imports this module (it reads a file), never
 * the driver.
 */
import fs from 'node:fs';
import { statusPage } from '../status-page.ts';
import { STATUS_PAGES_SERVICE, type Obj, type RouteTarget } from './objects.ts';

export const STATUS_PAGES_IMAGE = 'node:22-alpine';
const SERVER = 'status-server.mjs';
const NODE_UID = 1000;

/** Container (and Service) port of each page; the port names are the states. */
export const STATUS_PAGE_PORTS: Record<Exclude<RouteTarget, 'odoo'>, number> = { suspended: 8081, stopped: 8082, starting: 8083 };

/** pages.json of the server: one `{ state, port, status, html }` per state. */
export function statusPagesData(): { state: string; port: number; status: number; html: string }[] {
  return Object.entries(STATUS_PAGE_PORTS).map(([state, port]) => ({ state, port, ...statusPage(state as keyof typeof STATUS_PAGE_PORTS, 'This Odoo instance') }));
}

/** ConfigMap (server + pages), Deployment, Service and the NetworkPolicy letting Traefik in. */
export function statusPageObjects(namespace: string): Obj[] {
  const name = STATUS_PAGES_SERVICE;
  // Fresh objects at every use: shared ones would come out as YAML anchors.
  const labels = () => ({ 'app.kubernetes.io/name': name, 'app.kubernetes.io/part-of': 'saasodoo' });
  const selector = () => ({ 'app.kubernetes.io/name': name });
  const ports = Object.entries(STATUS_PAGE_PORTS);
  const server = fs.readFileSync(new URL(SERVER, import.meta.url), 'utf8');
  return [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace, labels: labels() },
      data: { [SERVER]: server, 'pages.json': `${JSON.stringify(statusPagesData(), null, 1)}\n` },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      // render stamps a hash of the ConfigMap on the pods, so new pages roll them.
      metadata: { name, namespace, labels: labels(), annotations: { 'saasodoo.io/config-hash-of': name } },
      spec: {
        replicas: 2,
        selector: { matchLabels: selector() },
        template: {
          metadata: { labels: labels() },
          spec: {
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: { runAsNonRoot: true, runAsUser: NODE_UID, runAsGroup: NODE_UID, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: 'pages',
                image: STATUS_PAGES_IMAGE,
                command: ['node', `/pages/${SERVER}`],
                ports: ports.map(([state, port]) => ({ name: state, containerPort: port })),
                // The pages answer 403/503 by design, so probes only check that the ports listen.
                readinessProbe: { tcpSocket: { port: ports[0]![0] }, periodSeconds: 5 },
                livenessProbe: { tcpSocket: { port: ports[0]![0] }, periodSeconds: 15 },
                resources: { requests: { cpu: '10m', memory: '48Mi' }, limits: { memory: '128Mi' } },
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
                volumeMounts: [{ name: 'pages', mountPath: '/pages', readOnly: true }],
              },
            ],
            volumes: [{ name: 'pages', configMap: { name } }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace, labels: labels() },
      spec: { type: 'ClusterIP', selector: selector(), ports: ports.map(([state, port]) => ({ name: state, port, targetPort: state, protocol: 'TCP' })) },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name, namespace, labels: labels() },
      spec: {
        podSelector: { matchLabels: selector() },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'traefik' } } }], ports: ports.map(([, port]) => ({ port, protocol: 'TCP' })) }],
      },
    },
  ];
}
