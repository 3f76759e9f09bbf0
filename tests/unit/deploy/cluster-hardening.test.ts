/**
 * The rendered production overlay against the cluster findings of issue 15:
 * per-IP limits need the real client address (4), the JWT private key only
 * in the signers (5), the shared PostgreSQL's connection budget (6) and
 * maintenance databases (7), /api on TLS only and Pod Security `restricted`
 * on the instances namespace (9).
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeObject } from '@saasodoo/platform/deploy/objects';
import { render } from '@saasodoo/platform/deploy/render';
import { functionSpec, functionNames } from '@saasodoo/platform/funcspec';
import { copyInfra, kubectlOrSkip } from '../../helpers/infra-copy.ts';
import { podSpecOf, restrictedViolations } from '../../helpers/pod-security.ts';

const kubectl = kubectlOrSkip('the cluster hardening checks');

describe.skipIf(!kubectl)('cluster hardening (production overlay)', () => {
  let dir: string;
  let objects: any[];
  const find = (kind: string, name: string, namespace?: string) => objects.find((o) => o.kind === kind && o.metadata.name === name && (!namespace || o.metadata.namespace === namespace));
  const env = (container: any, name: string) => container.env?.find((e: any) => e.name === name);
  const ksvcs = () => objects.filter((o) => o.kind === 'Service' && o.apiVersion.startsWith('serving.knative.dev/'));

  beforeAll(async () => {
    dir = copyInfra();
    objects = (await render({ overlay: 'production', dir, tag: 'v1.0.0' })).objects as KubeObject[] as any[];
  }, 120_000);

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('client address sharing', () => {
    it("the edge keeps the client address and trusts nobody's X-Forwarded-For", () => {
      const lb = find('Service', 'traefik', 'traefik');
      expect(lb.spec.type).toBe('LoadBalancer');
      expect(lb.spec.externalTrafficPolicy).toBe('Local');
      const args: string[] = find('Deployment', 'traefik', 'traefik').spec.template.spec.containers[0].args;
      for (const ep of ['web', 'websecure', 'internal']) expect(args).toContain(`--entrypoints.${ep}.forwardedHeaders.insecure=false`);
      expect(args.filter((a) => /forwardedHeaders\.(insecure=true|trustedIPs)|proxyProtocol\.(insecure|trustedIPs)/.test(a))).toEqual([]);
    });

    it('the portal reads the browser address from Traefik and vouches for it with the proxy token the functions hold', () => {
      const portal = find('Deployment', 'portal', 'saasodoo').spec.template.spec.containers[0];
      expect(env(portal, 'ADDRESS_HEADER').value).toBe('X-Forwarded-For');
      expect(env(portal, 'XFF_DEPTH').value).toBe('1'); // the entry Traefik appended
      const ref = env(portal, 'GATEWAY_PROXY_TOKEN').valueFrom.secretKeyRef;
      expect(ref).toEqual({ name: 'saasodoo-proxy', key: 'GATEWAY_PROXY_TOKEN' });
      // Every HTTP function built with the function kit (fn.ts reads the client address); webhook-intake
      // is Kill Bill's own entry point and limits nothing per IP.
      const http = ksvcs().filter((s) => functionSpec(s.metadata.name).invoke !== 'cloudevent' && s.metadata.name !== 'webhook-intake');
      expect(http.length).toBeGreaterThan(10);
      for (const s of http) expect([s.metadata.name, env(s.spec.template.spec.containers[0], 'GATEWAY_PROXY_TOKEN')?.valueFrom.secretKeyRef]).toEqual([s.metadata.name, ref]);
    });

    it('the portal reaches /api on the internal entrypoint, which only it may reach and the load balancer does not expose', () => {
      const config = find('ConfigMap', 'saasodoo-config', 'saasodoo').data;
      expect(config.GATEWAY_URL).toBe('http://traefik-internal.traefik.svc.cluster.local');
      const internal = find('Service', 'traefik-internal', 'traefik');
      expect(internal.spec.type).toBe('ClusterIP');
      expect(internal.spec.ports).toEqual([{ name: 'internal', port: 80, targetPort: 8001 }]);
      expect(find('Deployment', 'traefik', 'traefik').spec.template.spec.containers[0].args).toContain('--entrypoints.internal.address=:8001');
      expect(find('Service', 'traefik', 'traefik').spec.ports.map((p: any) => p.targetPort)).not.toContain(8001);
      const np = find('NetworkPolicy', 'traefik', 'traefik');
      const to8001 = np.spec.ingress.filter((r: any) => r.ports.some((p: any) => p.port === 8001));
      expect(to8001).toEqual([
        {
          from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'saasodoo' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'portal' } } }],
          ports: [{ port: 8001, protocol: 'TCP' }],
        },
      ]);
    });
  });

  describe('api over plain http', () => {
    it('/api is served on websecure and internal only; on web it redirects to https', () => {
      const api = find('IngressRoute', 'saasodoo-api', 'saasodoo');
      expect(api.spec.entryPoints).toEqual(['websecure', 'internal']);
      const redirect = find('IngressRoute', 'saasodoo-api-https-redirect', 'saasodoo');
      expect(redirect.spec.entryPoints).toEqual(['web']);
      expect(redirect.spec.routes[0].match).toBe('PathPrefix(`/api`)');
      const mw = find('Middleware', redirect.spec.routes[0].middlewares[0].name, 'saasodoo');
      expect(mw.spec).toEqual({ redirectScheme: { scheme: 'https', permanent: true } });
      // Nothing else routes /api on web.
      const onWeb = objects.filter((o) => o.kind === 'IngressRoute' && o.spec.entryPoints.includes('web') && o.metadata.name !== redirect.metadata.name);
      expect(onWeb.flatMap((o) => o.spec.routes).filter((r: any) => /\/api/.test(r.match))).toEqual([]);
    });
  });

  describe('JWT private key exposure', () => {
    it('only the signers (login, refresh) get JWT_PRIVATE_KEY; every function gets the public keys, not optional', () => {
      expect(
        ksvcs()
          .map((s) => s.metadata.name)
          .sort(),
      ).toEqual(functionNames().sort());
      const withPrivate = ksvcs()
        .filter((s) => env(s.spec.template.spec.containers[0], 'JWT_PRIVATE_KEY'))
        .map((s) => s.metadata.name);
      expect(withPrivate.sort()).toEqual(['login', 'refresh']);
      for (const s of ksvcs()) {
        const pub = env(s.spec.template.spec.containers[0], 'JWT_PUBLIC_KEYS');
        expect([s.metadata.name, pub?.valueFrom.secretKeyRef]).toEqual([s.metadata.name, { name: 'saasodoo-jwt', key: 'JWT_PUBLIC_KEYS' }]);
      }
    });
  });

  describe('tenant connection exhaustion and maintenance database exposure', () => {
    it('the PostgreSQL cluster sets max_connections and reserves connections for the service roles', () => {
      const db = find('Cluster', 'saasodoo-db', 'saasodoo-services');
      const p = db.spec.postgresql.parameters;
      expect(Number(p.max_connections)).toBe(300);
      expect(Number(p.reserved_connections)).toBeGreaterThan(0);
      expect(Number(p.max_connections) - Number(p.reserved_connections) - Number(p.superuser_reserved_connections)).toBeGreaterThan(200);
      const roles = db.spec.managed.roles;
      expect(roles.map((r: any) => r.name).sort()).toEqual(['audit_owner', 'audit_service', 'auth_service', 'billing_service', 'communication_service', 'instance_service', 'provisioner']);
      for (const r of roles) expect([r.name, r.inRoles]).toEqual([r.name, ['pg_use_reserved_connections']]);
    });

    it('PUBLIC cannot connect to postgres nor template1; the provisioner can, by name, and may pass postgres on to tenant roles (Odoo connects there)', () => {
      const sql: string[] = find('Cluster', 'saasodoo-db', 'saasodoo-services').spec.bootstrap.initdb.postInitSQL;
      expect(sql).toContain('REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC');
      expect(sql).toContain('REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC');
      expect(sql).toContain('GRANT CONNECT ON DATABASE postgres TO provisioner WITH GRANT OPTION');
      expect(sql.indexOf('GRANT CONNECT ON DATABASE postgres TO provisioner WITH GRANT OPTION')).toBeGreaterThan(sql.indexOf('CREATE ROLE provisioner NOLOGIN CREATEDB CREATEROLE'));
    });
  });

  describe('pod security', () => {
    it('the instances namespace enforces restricted, and every pod rendered into it would be admitted', () => {
      const ns = find('Namespace', 'saasodoo-instances');
      expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
      const pods = objects.filter((o) => o.metadata.namespace === 'saasodoo-instances' && podSpecOf(o));
      expect(pods.length).toBeGreaterThan(0);
      for (const o of pods) expect([o.metadata.name, restrictedViolations(podSpecOf(o))]).toEqual([o.metadata.name, []]);
    });
  });
});
