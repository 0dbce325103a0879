import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import path from 'node:path';
import { generate } from 'selfsigned';
import { ConfigError, type HubConfig, isLoopbackHost } from '../config.js';

/** The certificate the hub serves, and how to recognise it. */
export interface HubCert {
  /** PEM */
  cert: string;
  /** PEM (never logged) */
  key: string;
  /** SHA-256 of the DER certificate: `sha256:AB:CD:…` (what clients pin). */
  fingerprint: string;
  certFile: string;
  keyFile: string;
  /** Created on this start (self-signed). */
  generated: boolean;
  /** Self-signed by the hub (generated now or on an earlier start). */
  selfSigned: boolean;
  validTo: Date;
  subjectAltNames: string[];
}

/** TLS is on when `tls.enabled` says so; unset means on unless the hub binds a loopback address (SPEC C8). */
export function tlsEnabled(config: Pick<HubConfig, 'tls' | 'server'>): boolean {
  return config.tls.enabled ?? !isLoopbackHost(config.server.host);
}

/** Where the certificate lives: the configured files, or `<data_dir>/tls/hub-{cert,key}.pem`. */
export function certPaths(config: Pick<HubConfig, 'tls' | 'server'>): { certFile: string; keyFile: string; configured: boolean } {
  if (config.tls.cert_file && config.tls.key_file) return { certFile: config.tls.cert_file, keyFile: config.tls.key_file, configured: true };
  const dir = path.join(config.server.data_dir, 'tls');
  return { certFile: path.join(dir, 'hub-cert.pem'), keyFile: path.join(dir, 'hub-key.pem'), configured: false };
}

/** localhost, 127.0.0.1, ::1, this machine's host name, the bind address (if specific) and `tls.san`. */
export function subjectAltNames(config: Pick<HubConfig, 'tls' | 'server'>): string[] {
  const names = ['localhost', '127.0.0.1', '::1', hostname()];
  const bind = config.server.host.replace(/^\[|\]$/g, '');
  if (bind && bind !== '0.0.0.0' && bind !== '::') names.push(bind);
  names.push(...config.tls.san);
  if (config.server.external_url) names.push(new URL(config.server.external_url).hostname.replace(/^\[|\]$/g, ''));
  return [...new Set(names.filter(Boolean))];
}

async function writeAtomic(file: string, data: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode });
  await chmod(tmp, mode);
  await rename(tmp, file);
}

async function generateCert(config: Pick<HubConfig, 'tls' | 'server'>, certFile: string, keyFile: string): Promise<void> {
  const sans = subjectAltNames(config);
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(notBeforeDate.getTime() + config.tls.valid_days * 86_400_000);
  const pems = await generate([{ name: 'commonName', value: `hive-hub ${hostname()}`.slice(0, 64) }], {
    keyType: config.tls.key_type,
    ...(config.tls.key_type === 'ec' ? { curve: 'P-256' as const } : { keySize: 2048 }),
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: config.tls.key_type === 'rsa', critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: sans.map((n) => (isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n })) },
    ],
  });
  await mkdir(path.dirname(keyFile), { recursive: true, mode: 0o700 });
  await mkdir(path.dirname(certFile), { recursive: true, mode: 0o700 });
  // Key first: a cert without its key is useless, a key without its cert is regenerated.
  await writeAtomic(keyFile, pems.private, 0o600);
  await writeAtomic(certFile, pems.cert, 0o644);
}

/**
 * Loads the hub's certificate, creating a self-signed one on first use (ECDSA P-256 or RSA 2048,
 * SANs for localhost, 127.0.0.1, ::1, the host name and `tls.san`; key 0600). Later starts reuse
 * it, so the fingerprint clients pinned stays valid. Configured files are used as they are.
 */
export async function loadOrCreateHubCert(config: Pick<HubConfig, 'tls' | 'server'>): Promise<HubCert> {
  const { certFile, keyFile, configured } = certPaths(config);
  let generated = false;
  const haveCert = existsSync(certFile);
  const haveKey = existsSync(keyFile);
  if (!haveCert || !haveKey) {
    if (configured && (haveCert || haveKey || !config.tls.auto_generate)) {
      const [key, file] = haveCert ? ['tls.key_file', keyFile] : ['tls.cert_file', certFile];
      const how = config.tls.auto_generate
        ? ''
        : ' (set tls.auto_generate: true to create a self-signed pair there, or leave cert_file/key_file unset for one under the data directory)';
      throw new ConfigError(`Invalid config at ${key}: ${file} not found${how}`);
    }
    await generateCert(config, certFile, keyFile);
    generated = true;
  }
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new ConfigError(`Invalid config at tls.cert_file: ${certFile} is not a PEM certificate (${(err as Error).message})`);
  }
  let matches = false;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw new ConfigError(`Invalid config at tls.key_file: ${keyFile} is not a PEM private key (${(err as Error).message.split('\n')[0]})`);
  }
  if (!matches) throw new ConfigError(`Invalid config at tls.key_file: ${keyFile} is not the private key of ${certFile}`);
  return {
    cert,
    key,
    fingerprint: `sha256:${x509.fingerprint256}`,
    certFile,
    keyFile,
    generated,
    selfSigned: x509.subject === x509.issuer && x509.verify(x509.publicKey),
    validTo: new Date(x509.validTo),
    subjectAltNames: (x509.subjectAltName ?? '')
      .split(', ')
      .map((s) => s.replace(/^(DNS|IP Address):/, ''))
      .filter(Boolean),
  };
}
