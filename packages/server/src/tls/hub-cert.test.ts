import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, type HubConfig, loadConfig } from '../config.js';
import { loadOrCreateHubCert, tlsEnabled } from './hub-cert.js';

const made: string[] = [];
const dir = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'hive-tls-'));
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
const cfg = (dataDir: string, tls: Partial<HubConfig['tls']> = {}): HubConfig => {
  const c = loadConfig({ env: {}, overrides: { dataDir } });
  return { ...c, tls: { ...c.tls, enabled: true, ...tls } };
};

describe('hub certificate', () => {
  it('is on by default only off loopback, and env/flags switch it', () => {
    expect(tlsEnabled(loadConfig({ env: {} }))).toBe(false);
    expect(tlsEnabled(loadConfig({ env: {}, overrides: { host: '0.0.0.0' } }))).toBe(true);
    expect(tlsEnabled(loadConfig({ env: {}, overrides: { host: '::1' } }))).toBe(false);
    expect(tlsEnabled(loadConfig({ env: { HIVE_TLS: 'on' } }))).toBe(true);
    expect(tlsEnabled(loadConfig({ env: { HIVE_TLS: 'true' }, overrides: { tls: false } }))).toBe(false);
    expect(() => loadConfig({ env: { HIVE_TLS: 'maybe' } })).toThrow(/tls\.enabled/);
    expect(() => loadConfig({ env: { HIVE_TLS_CERT_FILE: '/x.pem' } })).toThrow(/tls\.key_file.*go together/);
  });

  it('generates RSA 2048 when asked, and reuses the pair on the next load', async () => {
    const d = dir();
    const first = await loadOrCreateHubCert(cfg(d, { key_type: 'rsa', valid_days: 30 }));
    expect(first.generated).toBe(true);
    const x509 = new X509Certificate(first.cert);
    expect(x509.publicKey.asymmetricKeyType).toBe('rsa');
    expect(x509.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(first.validTo.getTime() - Date.now()).toBeLessThan(31 * 86_400_000);
    expect(statSync(first.keyFile).mode & 0o777).toBe(0o600);
    const again = await loadOrCreateHubCert(cfg(d, { key_type: 'rsa' }));
    expect(again).toMatchObject({ generated: false, fingerprint: first.fingerprint });
  });

  it('refuses a key that does not belong to the certificate, naming tls.key_file', async () => {
    const a = await loadOrCreateHubCert(cfg(dir()));
    const b = await loadOrCreateHubCert(cfg(dir()));
    const d = dir();
    copyFileSync(a.certFile, path.join(d, 'cert.pem'));
    copyFileSync(b.keyFile, path.join(d, 'key.pem'));
    const bad = cfg(d, { cert_file: path.join(d, 'cert.pem'), key_file: path.join(d, 'key.pem') });
    await expect(loadOrCreateHubCert(bad)).rejects.toThrow(ConfigError);
    await expect(loadOrCreateHubCert(bad)).rejects.toThrow(/tls\.key_file: .*is not the private key/);
    // Nothing was written over the operator's files.
    expect(readFileSync(path.join(d, 'key.pem'), 'utf8')).toBe(readFileSync(b.keyFile, 'utf8'));
  });

  it('creates a pair at configured paths only with auto_generate', async () => {
    const d = dir();
    const paths = { cert_file: path.join(d, 'c', 'cert.pem'), key_file: path.join(d, 'k', 'key.pem') };
    await expect(loadOrCreateHubCert(cfg(d, paths))).rejects.toThrow(/tls\.cert_file: .*not found.*auto_generate/);
    const made = await loadOrCreateHubCert(cfg(d, { ...paths, auto_generate: true }));
    expect(made).toMatchObject({ generated: true, certFile: paths.cert_file, keyFile: paths.key_file });
    expect(statSync(paths.key_file).mode & 0o777).toBe(0o600);
  });
});
