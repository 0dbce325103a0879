import type { Server as NetServer, Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';

/** Node's default TLS handshake timeout: a connection that never sends a byte is dropped after it, as it was before. */
export const FIRST_BYTES_TIMEOUT_MS = 120_000;

/**
 * Per-connection memory of the hub's TLS listener (issue #8).
 *
 * Node's TLS layer keeps the buffer it receives ciphertext into for the whole life of the
 * connection, and sizes it by the first read: when that read comes from the socket, libuv asks
 * for 64 KiB (`TLSWrap::OnStreamAlloc` → `NodeBIO::PeekWritable(65536)`). Of those 64 KiB, the
 * pages earlier handshakes had touched (their freed OpenSSL record buffers) stay resident, so a
 * satellite cost 5–21 KB more RSS than it needs, the more the slower the fleet connected.
 * When the socket already holds bytes as the TLS layer is attached, Node feeds them in at their
 * real length (`initRead` → `TLSWrap::Receive`) and the buffer is sized to them (at least 1 KiB);
 * later reads reuse it while it is big enough.
 *
 * So the server's TLS connection listener (and any other `connection` listener present now)
 * runs once the client's first bytes — its ClientHello — are readable on the plain socket, not
 * at accept. Everything TLS does afterwards (handshake, SNI, ALPN, `secureConnection`,
 * `tlsClientError`, its handshake timeout) is Node's own, unchanged. Before that point a socket
 * that errors is destroyed, one that ends without a byte is destroyed (Node would report a
 * `tlsClientError` for it), one that stays silent for `timeoutMs` is destroyed (Node's handshake
 * timeout did that).
 *
 * Returns false (and changes nothing) for a server that is not a TLS server.
 */
export function attachTlsOnFirstBytes(server: NetServer, { timeoutMs = FIRST_BYTES_TIMEOUT_MS }: { timeoutMs?: number } = {}): boolean {
  if (!(server instanceof TlsServer)) return false;
  const listeners = server.listeners('connection') as ((this: NetServer, socket: Socket) => void)[];
  if (listeners.length === 0) return false;
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    const drop = () => socket.destroy();
    const attach = () => {
      socket.removeListener('readable', attach);
      socket.removeListener('error', drop);
      socket.removeListener('timeout', drop);
      socket.setTimeout(0);
      if (socket.destroyed || socket.readableLength === 0) {
        socket.destroy();
        return;
      }
      for (const listener of listeners) listener.call(server, socket);
    };
    socket.on('error', drop);
    socket.on('timeout', drop);
    socket.setTimeout(timeoutMs);
    socket.on('readable', attach);
  });
  return true;
}
