/**
 * The status-page server on Kubernetes (see status-pages.ts). The runtime
 * driver points a suspended, stopped or starting instance's IngressRoute at
 * one of its ports; each port answers every path with one page and its status
 * (403 suspended, 503 stopped or starting), so the customer sees the same
 * page as on the local runtime instead of Traefik's bare 503.
 *
 * Run as `node status-server.mjs` next to `pages.json`
 * (`[{ state, port, status, html }]`), both from the ConfigMap. Plain
 * JavaScript with no dependencies so that it runs on a stock Node image.
 */
// @ts-check
import fs from 'node:fs';
import http from 'node:http';

/** @type {{ state: string; port: number; status: number; html: string }[]} */
const pages = JSON.parse(fs.readFileSync(new URL('pages.json', import.meta.url), 'utf8'));

await Promise.all(
  pages.map(
    (p) =>
      new Promise((resolve, reject) => {
        const body = Buffer.from(p.html);
        const server = http.createServer((req, res) => {
          req.resume();
          res.writeHead(p.status, { 'content-type': 'text/html; charset=utf-8', 'content-length': body.length, 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : body);
        });
        server.once('error', reject);
        server.listen(p.port, () => resolve(undefined));
      }),
  ),
);
console.log(`status pages: ${pages.map((p) => `${p.state} on ${p.port}`).join(', ')}`);

process.on('SIGTERM', () => process.exit(0));
