import { KubernetesObjectApi, PatchStrategy, Watch, AppsV1Api } from '@kubernetes/client-node';
import { startFakeKube } from '../helpers/fake-kube.ts';
const fake = await startFakeKube({ simulate: { deployments: 'ready' } });
const kc = fake.kubeConfig('ns1');
const api = KubernetesObjectApi.makeApiClient(kc);
const cm = await api.patch({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'ns1' }, data: { x: '1' } } as any, undefined, undefined, 'saasodoo', true, PatchStrategy.ServerSideApply);
console.log('applied', cm.metadata?.resourceVersion, (cm as any).data);
const w = new Watch(kc);
const ctrl = await w.watch('/apis/apps/v1/namespaces/ns1/deployments', { fieldSelector: 'metadata.name=d' }, (t, o) => console.log('watch', t, o.status), (e) => console.log('done', e?.message, e?.name, e));
await api.patch({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: 'ns1' }, spec: { replicas: 1, selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'x' }] } } } } as any, undefined, undefined, 'saasodoo', true, PatchStrategy.ServerSideApply);
await new Promise((r) => setTimeout(r, 100));
try { await api.read({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'nope', namespace: 'ns1' } }); } catch (e: any) { console.log('err', e.code, typeof e.body, String(e.body).slice(0, 80)); }
const apps = kc.makeApiClient(AppsV1Api);
const d = await apps.readNamespacedDeployment({ name: 'd', namespace: 'ns1' });
console.log('typed', d.status?.readyReplicas);
ctrl.abort();
await fake.close();
