/**
 * Runs a Kubernetes Job object the driver generates as a Docker container,
 * giving it what the pod would get: its command and args, env from its
 * Secrets (envFrom / secretKeyRef), its volumeMounts (PVCs as host folders,
 * Secret volumes as files with the volume's defaultMode, subPath, readOnly),
 * its user, group and fsGroup, no capabilities and no privilege escalation,
 * its memory limit. Host networking: the tests' PostgreSQL is on 127.0.0.1.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { docker } from './docker-image.ts';

export type JobWorld = {
  /** PVC claim name → host folder. */
  pvcs: Record<string, string>;
  /** Secret name → its data. */
  secrets: Record<string, Record<string, string>>;
  /** Image names in the Job → images built here. */
  images: Record<string, string>;
};

function bytesOf(q: string | undefined): number | undefined {
  const m = /^(\d+)(Mi|Gi)?$/.exec(q ?? '');
  if (!m) return undefined;
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 ** 3 : m[2] === 'Mi' ? 1024 ** 2 : 1);
}

/** Chowns a PVC's folder tree to root:fsGroup, group-writable and setgid, as kubelet does for fsGroup. */
export function applyFsGroup(dir: string, gid: number): void {
  const walk = (p: string) => {
    fs.lchownSync(p, 0, gid);
    const st = fs.lstatSync(p);
    if (st.isDirectory()) {
      fs.chmodSync(p, (st.mode & 0o777) | 0o2070);
      for (const n of fs.readdirSync(p)) walk(path.join(p, n));
    } else if (st.isFile()) fs.chmodSync(p, (st.mode & 0o777) | 0o060);
  };
  walk(dir);
}

/** Runs the Job's pod to completion; returns its exit code and log. */
export async function runJobInDocker(job: any, world: JobWorld): Promise<{ exitCode: number; log: string }> {
  const pod = job.spec.template.spec;
  const c = pod.containers[0];
  const sc = pod.securityContext ?? {};
  const env: string[] = [];
  for (const from of c.envFrom ?? []) for (const [k, v] of Object.entries(world.secrets[from.secretRef.name] ?? {})) env.push(`${k}=${v}`);
  for (const e of c.env ?? []) env.push(`${e.name}=${e.value ?? world.secrets[e.valueFrom.secretKeyRef.name]?.[e.valueFrom.secretKeyRef.key] ?? ''}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'saasodoo-job-'));
  const binds: string[] = [];
  for (const m of c.volumeMounts ?? []) {
    const vol = pod.volumes.find((v: any) => v.name === m.name);
    let host: string;
    if (vol.persistentVolumeClaim) {
      host = world.pvcs[vol.persistentVolumeClaim.claimName];
      if (sc.fsGroup !== undefined) applyFsGroup(host, sc.fsGroup);
    } else if (vol.secret) {
      host = path.join(tmp, vol.name);
      fs.mkdirSync(host, { recursive: true });
      for (const [k, v] of Object.entries(world.secrets[vol.secret.secretName] ?? {})) {
        fs.writeFileSync(path.join(host, k), v, { mode: vol.secret.defaultMode ?? 0o644 });
        if (sc.fsGroup !== undefined) fs.chownSync(path.join(host, k), 0, sc.fsGroup);
      }
    } else throw new Error(`volume ${vol.name}: only PVCs and Secrets are simulated`);
    if (m.subPath) host = path.join(host, m.subPath);
    binds.push(`${host}:${m.mountPath}${m.readOnly ? ':ro' : ''}`);
  }
  const container = await docker.createContainer({
    Image: world.images[c.image] ?? c.image,
    Entrypoint: c.command,
    Cmd: c.args ?? [],
    Env: env,
    User: sc.runAsUser !== undefined ? `${sc.runAsUser}:${sc.runAsGroup ?? sc.runAsUser}` : undefined,
    HostConfig: {
      NetworkMode: 'host',
      Binds: binds,
      GroupAdd: sc.fsGroup !== undefined ? [String(sc.fsGroup)] : [],
      CapDrop: c.securityContext?.capabilities?.drop ?? [],
      SecurityOpt: c.securityContext?.allowPrivilegeEscalation === false ? ['no-new-privileges'] : [],
      Memory: bytesOf(c.resources?.limits?.memory),
    },
  });
  try {
    const waited = container.wait({ condition: 'next-exit' });
    await container.start();
    const { StatusCode } = (await waited) as { StatusCode: number };
    const raw = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    let log = '';
    for (let i = 0; i + 8 <= raw.length;) {
      const n = raw.readUInt32BE(i + 4);
      log += raw.subarray(i + 8, i + 8 + n).toString('utf8');
      i += 8 + n;
    }
    return { exitCode: StatusCode, log };
  } finally {
    await container.remove({ force: true, v: true }).catch(() => {});
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
