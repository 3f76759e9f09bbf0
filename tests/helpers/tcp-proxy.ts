/**
 * A TCP proxy a test controls, to simulate a RabbitMQ (or any dependency)
 * outage without stopping the machine's shared server: `cut()` drops every
 * connection and refuses new ones, `restore()` lets them through again.
 */
import net from 'node:net';

export type TcpProxy = { port: number; url(scheme: string, auth?: string): string; cut(): void; restore(): void; close(): Promise<void> };

export async function tcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let open = true;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: (scheme, auth) => `${scheme}://${auth ? `${auth}@` : ''}127.0.0.1:${port}`,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      open = true;
    },
    close: () =>
      new Promise<void>((r) => {
        open = false;
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
