/**
 * Probing Odoo's `/web/health` (platform/src/instances/README.md 5). One sweep may cover thousands of
 * instances, so probes run through a fixed pool of workers sharing keep-alive
 * agents: memory stays flat (no promise per URL up front) and a slow instance
 * costs at most `timeoutMs` of one worker.
 */
import http from 'node:http';
import https from 'node:https';

export type ProbeResult = {
  url: string;
  ok: boolean;
  /** HTTP status when one came back. */
  status?: number;
  /** Why not ok: 'timeout', 'status 503', a socket error code... (no secrets: URLs are public). */
  error?: string;
  ms: number;
};

export type ProbeOptions = {
  /** Probes in flight at once (default 50). */
  concurrency?: number;
  /** Per-probe timeout (default 5000, platform/src/instances/README.md 5). */
  timeoutMs?: number;
  /** Called as each probe finishes (lets a caller stream results instead of waiting). */
  onResult?: (r: ProbeResult, index: number) => void;
};

const MAX_BODY = 64 * 1024;

/**
 * Probes one URL: ok when it answers 2xx within the timeout (and, when the
 * body is JSON with a `status`, that status is "pass", as Odoo's is).
 */
export function probeOne(url: string, timeoutMs = 5000, agents?: { http: http.Agent; https: https.Agent }): Promise<ProbeResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const finish = (r: Omit<ProbeResult, 'url' | 'ms'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ url, ms: Math.round(performance.now() - started), ...r });
    };
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return finish({ ok: false, error: 'invalid url' });
    }
    const mod = target.protocol === 'https:' ? https : http;
    const agent = agents ? (target.protocol === 'https:' ? agents.https : agents.http) : undefined;
    const req = mod.get(target, { agent, headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
      });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) return finish({ ok: false, status, error: `status ${status}` });
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          if (body && typeof body === 'object' && 'status' in body && body.status !== 'pass') {
            return finish({ ok: false, status, error: `health ${String(body.status)}` });
          }
        } catch {
          /* not JSON: the status code decides */
        }
        finish({ ok: true, status });
      });
      res.on('error', (err) => finish({ ok: false, status: res.statusCode, error: (err as NodeJS.ErrnoException).code ?? err.message }));
    });
    const timer = setTimeout(() => {
      finish({ ok: false, error: 'timeout' });
      req.destroy();
    }, timeoutMs);
    req.on('error', (err) => finish({ ok: false, error: (err as NodeJS.ErrnoException).code ?? err.message }));
  });
}

/**
 * Probes every URL with at most `concurrency` in flight; results are in the
 * order of `urls`. Never throws: a failure is a result with ok false.
 */
export async function probeAll(urls: readonly string[], opts: ProbeOptions = {}): Promise<ProbeResult[]> {
  const concurrency = Math.max(1, Math.min(opts.concurrency ?? 50, urls.length || 1));
  const timeoutMs = opts.timeoutMs ?? 5000;
  const agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency }),
    https: new https.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency }),
  };
  const results = new Array<ProbeResult>(urls.length);
  let next = 0;
  const worker = async () => {
    while (next < urls.length) {
      const i = next++;
      results[i] = await probeOne(urls[i], timeoutMs, agents);
      opts.onResult?.(results[i], i);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agents.http.destroy();
    agents.https.destroy();
  }
  return results;
}
