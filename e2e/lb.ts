import net from 'node:net';

/**
 * A plain TCP load balancer on 127.0.0.1 for scale-out tests: each new connection goes to the
 * next backend (round robin); a backend that refuses is skipped. It knows nothing of HTTP or
 * WebSockets, like the L4 balancers users put in front of several hubs.
 */
export async function startLb(
  backends: number[],
): Promise<{ port: number; url: string; wsUrl: string; setBackends(ports: number[]): void; close(): Promise<void> }> {
  let ports = [...backends];
  let next = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    client.pause();
    const tryConnect = (attempt: number) => {
      if (attempt >= ports.length || ports.length === 0) {
        client.destroy();
        return;
      }
      const port = ports[next++ % ports.length] as number;
      const up = net.connect({ host: '127.0.0.1', port });
      up.once('error', () => {
        up.destroy();
        if (!client.destroyed) tryConnect(attempt + 1);
      });
      up.once('connect', () => {
        sockets.add(up);
        up.on('close', () => {
          sockets.delete(up);
          client.destroy();
        });
        up.on('error', () => {});
        client.on('close', () => up.destroy());
        client.pipe(up);
        up.pipe(client);
        client.resume();
      });
    };
    tryConnect(0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    setBackends(p) {
      ports = [...p];
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
