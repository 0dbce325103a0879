import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type * as Tls from 'node:tls';
import { HiveError } from './protocol-lite.js';

// Loaded with require: an ESM import of node:tls builds the module's namespace, which reads its
// lazy `rootCertificates` and keeps the ~140 system CA certificates in the heap (~0.3 MB) whether
// or not the hub is reached over TLS.
const tls = createRequire(import.meta.url)('node:tls') as typeof Tls;

/**
 * How a client decides to trust the hub's TLS certificate:
 * - `pin`: the certificate's SHA-256 fingerprint must equal this one (self-signed hubs); no CA check.
 * - `ca`: the chain and host name must verify against `ca` (PEM), or the system CAs when absent.
 * - `tofu`: trust on first use: accept what the hub presents and report it, so the caller can pin it.
 */
export type HubTrust = { mode: 'pin'; fingerprint: string } | { mode: 'ca'; ca?: string | Buffer | undefined } | { mode: 'tofu' };

/** What one TLS handshake presented. */
export interface TlsSeen {
  /** `sha256:AB:CD:…` */
  fingerprint: string;
  /** The certificate verified against the CAs in use (system or `ca`), host name included. */
  authorized: boolean;
  authorizationError?: string | undefined;
}

const HEX64 = /^[0-9A-F]{64}$/;

/**
 * Canonical form of a certificate fingerprint: `sha256:` + 32 upper-case hex pairs joined by `:`.
 * Accepts `sha256:ab:cd…`, `SHA256:…`, `AB:CD…` or plain 64 hex digits. Throws INVALID_PARAMETERS
 * naming the expected format otherwise.
 */
export function normalizeFingerprint(input: string): string {
  const raw = input
    .trim()
    .replace(/^sha-?256[:=]?/i, '')
    .replace(/[:\s]/g, '')
    .toUpperCase();
  if (!HEX64.test(raw)) {
    throw new HiveError(
      'INVALID_PARAMETERS',
      'A hub fingerprint is the SHA-256 of its certificate: sha256:AB:CD:… (32 hex pairs), as printed by `hive server fingerprint`',
    );
  }
  return `sha256:${raw.match(/../g)?.join(':')}`;
}

/** Same fingerprint, whatever the spelling. Never throws. */
export function sameFingerprint(a: string, b: string): boolean {
  try {
    return normalizeFingerprint(a) === normalizeFingerprint(b);
  } catch {
    return false;
  }
}

export function mismatchError(expected: string, seen: string, where: string): HiveError {
  return new HiveError(
    'TLS_FINGERPRINT_MISMATCH',
    `The hub at ${where} presented a TLS certificate with fingerprint ${seen}, but ${expected} is pinned; refusing to connect. If the hub's certificate was replaced on purpose, pin the new fingerprint (\`hive server fingerprint\` on the hub).`,
    { expected, seen },
    { action: 'abort' },
  );
}

export function untrustedError(seen: TlsSeen, where: string, ca: boolean): HiveError {
  return new HiveError(
    'TLS_UNTRUSTED',
    `The hub at ${where} presented a TLS certificate that does not verify against ${ca ? 'the given CA file' : 'the system CAs'} (${seen.authorizationError ?? 'unverified'}); its fingerprint is ${seen.fingerprint}. If that matches \`hive server fingerprint\` on the hub, pin it (--hub-fingerprint / HIVE_HUB_FINGERPRINT), or give the CA that signed it (--ca-file).`,
    { seen: seen.fingerprint, reason: seen.authorizationError ?? 'unverified' },
    { action: 'abort' },
  );
}

type ConnectOpts = Tls.ConnectionOptions & { host?: string | null; hostname?: string | null; port?: number | string | null; path?: string | null };

/**
 * A `createConnection` for `ws` and `https.request` that opens TLS, checks the certificate against
 * `trust`, and only then hands the socket over, so nothing (no upgrade request, no API key) is
 * written to a hub that failed the check. Failures are HiveErrors: TLS_FINGERPRINT_MISMATCH naming
 * expected and seen fingerprints, or TLS_UNTRUSTED.
 */
export function secureConnector(trust: HubTrust, onSeen?: (seen: TlsSeen) => void) {
  return (opts: ConnectOpts, cb: (err: Error | null, socket?: Duplex) => void): undefined => {
    const rawHost = opts.host ?? opts.hostname ?? 'localhost';
    const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
    const port = Number(opts.port) || 443;
    const where = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
    const { path: _path, ...rest } = opts;
    const socket = tls.connect({
      ...rest,
      host,
      port,
      servername: opts.servername ?? (isIP(host) ? '' : host),
      // Verification happens below, against `trust`; the handshake itself must not reject a
      // self-signed certificate that is pinned.
      rejectUnauthorized: false,
      ...(trust.mode === 'ca' && trust.ca ? { ca: trust.ca } : {}),
      ALPNProtocols: ['http/1.1'],
    });
    let done = false;
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      if (err) {
        socket.destroy();
        cb(err);
      } else cb(null, socket);
    };
    // Stays attached: errors after the handover go to the HTTP client's own listener as well.
    socket.on('error', (err: Error) => finish(err));
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      if (!cert?.fingerprint256) {
        finish(new HiveError('TLS_UNTRUSTED', `The hub at ${where} presented no certificate`));
        return;
      }
      const seen: TlsSeen = {
        fingerprint: normalizeFingerprint(cert.fingerprint256),
        authorized: socket.authorized,
        authorizationError: socket.authorizationError ? String(socket.authorizationError) : undefined,
      };
      if (trust.mode === 'pin' && !sameFingerprint(trust.fingerprint, seen.fingerprint)) {
        finish(mismatchError(normalizeFingerprint(trust.fingerprint), seen.fingerprint, where));
        return;
      }
      if (trust.mode === 'ca' && !seen.authorized) {
        finish(untrustedError(seen, where, !!trust.ca));
        return;
      }
      onSeen?.(seen);
      finish(null);
    });
    return undefined;
  };
}
