import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const file = (text: string) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hive-cfg-'));
  dirs.push(dir);
  const p = path.join(dir, 'server.yaml');
  writeFileSync(p, text);
  return p;
};

describe('config', () => {
  it('needs nothing: SQLite under ./data on 127.0.0.1:7420', () => {
    const c = loadConfig({ env: {} });
    expect(c.server).toMatchObject({ host: '127.0.0.1', port: 7420, data_dir: './data' });
    expect(c.database).toMatchObject({ driver: 'sqlite', connection: path.join('./data', 'hive.db') });
    expect(c.pairing.auto_approve_loopback).toBe(true);
  });

  // biome-ignore lint/suspicious/noTemplateCurlyInString: the test is about ${ENV} substitution
  it('file < env < flags, with ${ENV} substitution and durations', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a YAML file with an ${ENV} reference
    const f = file('server:\n  port: 9000\nauth:\n  admin_api_key: "${MY_KEY}"\nagents:\n  heartbeat_interval: 15s\n  token_expiration: 30d\n');
    const c = loadConfig({ file: f, env: { MY_KEY: 'k', HIVE_PORT: '9100' } });
    expect(c.server.port).toBe(9100);
    expect(c.auth.admin_api_key).toBe('k');
    expect(c.agents.heartbeat_interval).toBe(15_000);
    expect(c.agents.token_expiration).toBe(30 * 86_400_000);
    expect(loadConfig({ file: f, env: { HIVE_PORT: '9100' }, overrides: { port: 1234 } }).server.port).toBe(1234);
    // an unset variable falls back to the default instead of an empty string
    expect(loadConfig({ file: f, env: {} }).auth.admin_api_key).toBeUndefined();
  });

  it("accepts seed 003 §4's server.yaml as written (tls, provisioning, mcp, heartbeat_timeout, …)", () => {
    const seed = fileURLToPath(new URL('./fixtures/seed-003-server.yaml', import.meta.url));
    const c = loadConfig({ file: seed, env: { JWT_SECRET: 'j', ADMIN_API_KEY: 'k' } });
    expect(c.server).toMatchObject({ host: '0.0.0.0', port: 3000, external_url: 'https://hive.example.com' });
    expect(c.tls).toMatchObject({ enabled: true, cert_file: '/etc/satellite-hive/cert.pem', auto_generate: false });
    expect(c.auth.jwt_expiration).toBe(24 * 3_600_000);
    expect(c.agents.heartbeat_timeout).toBe(90_000);
    expect(c.provisioning.platforms).toHaveLength(5);
    expect(c.mcp).toEqual({ enabled: true, transport: 'stdio' });
    expect(c.logging).toMatchObject({ format: 'json', file: './logs/server.log' });
    expect(c.audit).toEqual({ enabled: true, retention_days: 90 });
  });

  it('cluster: Redis needs PostgreSQL; bad values name their key', () => {
    expect(() => loadConfig({ file: file('cluster:\n  redis_url: redis://127.0.0.1:6379\n'), env: {} })).toThrow(/cluster\.redis_url.*postgres/);
    expect(() => loadConfig({ file: file('cluster:\n  redis_url: http://x\n'), env: {} })).toThrow(/cluster\.redis_url/);
    const c = loadConfig({
      env: { HIVE_DB_DRIVER: 'postgres', HIVE_DB_CONNECTION: 'postgres://x@y/z', HIVE_REDIS_URL: 'redis://r:6379', HIVE_INSTANCE_ID: 'hub-1' },
    });
    expect(c.cluster).toMatchObject({ redis_url: 'redis://r:6379', instance_id: 'hub-1', presence_ttl: 15_000, key_prefix: 'hive' });
    expect(() => loadConfig({ file: file('provisioning:\n  platforms: [{ os: linux, arch: amd64, binary: ../../etc/passwd }]\n'), env: {} })).toThrow(
      /provisioning\.platforms\.0\.binary/,
    );
  });

  it('names the bad key', () => {
    expect(() => loadConfig({ file: file('server:\n  prot: 1\n'), env: {} })).toThrow(/server.*prot/);
    expect(() => loadConfig({ file: file('server:\n  port: high\n'), env: {} })).toThrow(/server\.port/);
    expect(() => loadConfig({ file: file('agents:\n  heartbeat_interval: soon\n'), env: {} })).toThrow(/agents\.heartbeat_interval/);
    expect(() => loadConfig({ file: file('database:\n  driver: postgres\n'), env: {} })).toThrow(/database\.connection/);
    expect(() => loadConfig({ file: '/nope/server.yaml', env: {} })).toThrow(ConfigError);
  });
});
