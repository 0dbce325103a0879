import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { HiveClient } from '@hive/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { type AgentProc, cleanup, HIVE_BIN, operator, pinnedFetch, runCli, spawnAgent, startHub, type TestHub, tempDir } from './helpers.js';

const WRONG = `sha256:${Array.from({ length: 32 }, () => '00').join(':')}`;
const OPEN_EXEC = { approvals: { rules: [{ command: 'system.run', require: false }] } };

function tokensOf(stateDir: string): Record<string, string> {
  return JSON.parse(readFileSync(path.join(stateDir, 'tokens.json'), 'utf8')) as Record<string, string>;
}

describe('TLS: self-signed hub certificate, pinned by agents and the CLI', () => {
  let t: TestHub;
  let fp: string;
  let agent: AgentProc | undefined;
  let satId: string;

  beforeAll(async () => {
    t = await startHub({ tls: true, overrides: { ...OPEN_EXEC, tls: { san: ['hive.example.test', '10.9.8.7'] } } });
    fp = t.fingerprint as string;
  });
  afterAll(async () => {
    await agent?.kill();
    await t?.close();
    cleanup(t.dataDir);
  });

  it('creates a self-signed certificate on first start: key 0600, SANs, fingerprint of the served certificate', async () => {
    expect(t.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(t.hub.tls).toMatchObject({ generated: true, selfSigned: true, fingerprint: fp });
    const certFile = path.join(t.dataDir, 'tls', 'hub-cert.pem');
    const keyFile = path.join(t.dataDir, 'tls', 'hub-key.pem');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const x509 = new X509Certificate(readFileSync(certFile));
    expect(`sha256:${x509.fingerprint256}`).toBe(fp);
    expect(fp).toMatch(/^sha256:([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    for (const san of [
      'DNS:localhost',
      'IP Address:127.0.0.1',
      'IP Address:0:0:0:0:0:0:0:1',
      `DNS:${hostname()}`,
      'DNS:hive.example.test',
      'IP Address:10.9.8.7',
    ])
      expect(x509.subjectAltName).toContain(san);
    expect(x509.publicKey.asymmetricKeyType).toBe('ec');
    // The key never reaches the logs.
    expect(t.logs.join('\n')).not.toContain(readFileSync(keyFile, 'utf8').split('\n')[1]);
    expect(t.logs.join('\n')).toContain(fp);
    const health = await t.api('GET', '/health');
    expect(health.status).toBe(200);
  });

  it('serves no plaintext: http:// and ws:// on the port fail', async () => {
    await expect(fetch(`http://127.0.0.1:${t.port}/health`)).rejects.toThrow();
    const plain = new HiveClient({
      url: `ws://127.0.0.1:${t.port}/ws`,
      role: 'operator',
      apiKey: t.adminKey,
      client: { name: 't', version: '0' },
      reconnect: false,
    });
    const disconnected = new Promise<{ wasConnected: boolean }>((resolve) => plain.once('disconnected', resolve));
    void plain.start().catch(() => {});
    expect((await disconnected).wasConnected).toBe(false);
    await plain.close();
  });

  it('a real agent pairs over wss with the pinned fingerprint and runs a command', async () => {
    const op = await operator(t);
    const state = path.join(t.dataDir, 'agent');
    agent = spawnAgent(t.wsUrl, state, ['--name', 'tls-box', '--hub-fingerprint', fp.toLowerCase()]);
    satId = (await op.waitEvent('satellite:online')).id;
    await op.close();
    await agent.waitLine((l) => l.msg === 'connected');
    const res = await t.api('POST', `/api/v1/satellites/${satId}/exec`, { command: 'system.run', params: { argv: ['echo', 'over', 'tls'] } });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ state: 'succeeded', result: { exitCode: 0, stdout: 'over tls\n' } });
    // A configured pin is not overwritten by trust on first use.
    expect(tokensOf(state).hubTls).toBeUndefined();
  });

  it('the CLI runs REST calls over https with HIVE_HUB_FINGERPRINT', async () => {
    const env = { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey, HIVE_HUB_FINGERPRINT: fp };
    const list = await runCli(['satellites', '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).data.map((s: { id: string }) => s.id)).toContain(satId);
    const exec = await runCli(['exec', 'tls-box', '--', 'echo', 'cli-over-tls'], env);
    expect(exec.code, exec.stderr).toBe(0);
    expect(exec.stdout).toBe('cli-over-tls\n');
    // The WebSocket path of the CLI (hive ssh) is pinned too: this error comes from the hub, after the handshake.
    const ssh = await runCli(['ssh', 'no-such-satellite', '--', 'true'], env);
    expect(ssh.code).toBe(1);
    expect(ssh.stderr).toContain('SATELLITE_NOT_FOUND');
  });

  it('the CLI refuses a wrong fingerprint (REST and WebSocket) and an unpinned self-signed hub, naming both fingerprints', async () => {
    const env = { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey, HIVE_HUB_FINGERPRINT: WRONG };
    const rest = await runCli(['satellites'], env);
    expect(rest.code).toBe(1);
    expect(rest.stderr).toContain('TLS_FINGERPRINT_MISMATCH');
    expect(rest.stderr).toContain(WRONG);
    expect(rest.stderr).toContain(fp);
    expect(rest.stderr).not.toContain(t.adminKey);
    const ws = await runCli(['ssh', 'tls-box', '--', 'true'], env);
    expect(ws.code).toBe(1);
    expect(ws.stderr).toContain('TLS_FINGERPRINT_MISMATCH');
    expect(ws.stderr).toContain(fp);
    const unpinned = await runCli(['satellites'], { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey });
    expect(unpinned.code).toBe(1);
    expect(unpinned.stderr).toContain('TLS_UNTRUSTED');
    expect(unpinned.stderr).toContain(fp);
    const malformed = await runCli(['satellites'], { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey, HIVE_HUB_FINGERPRINT: 'sha256:zz' });
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toContain('INVALID_PARAMETERS');
    // A pin never falls back to plaintext.
    const plain = await runCli(['satellites'], { HIVE_URL: `http://127.0.0.1:${t.port}`, HIVE_API_KEY: t.adminKey, HIVE_HUB_FINGERPRINT: fp });
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain('TLS_UNTRUSTED');
  });

  it('hive login pins the certificate it sees (trust on first use); later commands need no fingerprint', async () => {
    const cfg = tempDir('hive-cli-');
    const login = await runCli(['login', '--url', t.url, '--api-key', t.adminKey], { XDG_CONFIG_HOME: cfg });
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain(fp);
    const saved = JSON.parse(readFileSync(path.join(cfg, 'hive', 'cli.json'), 'utf8'));
    expect(saved).toMatchObject({ url: t.url, hubFingerprint: fp });
    const list = await runCli(['satellites', '--json'], { XDG_CONFIG_HOME: cfg });
    expect(list.code, list.stderr).toBe(0);
    cleanup(cfg);
  });

  it('an agent with a wrong fingerprint is refused before it says anything to the hub', async () => {
    const state = tempDir('hive-agent-');
    const bad = spawnAgent(t.wsUrl, state, ['--name', 'impostor-victim', '--hub-fingerprint', WRONG]);
    const { code } = await bad.exited;
    expect(code).toBe(1);
    const err = bad.stderr.join('');
    expect(err).toContain('TLS_FINGERPRINT_MISMATCH');
    expect(err).toContain(WRONG);
    expect(err).toContain(fp);
    expect(bad.stdout.some((l) => l.includes('"connected"'))).toBe(false);
    // Fail closed: no pairing request, no token.
    const pairing = await t.api('GET', '/api/v1/pairing');
    expect(pairing.status).toBe(200);
    expect(pairing.body.data.some((r: { client: { displayName?: string } }) => r.client.displayName === 'impostor-victim')).toBe(false);
    expect(() => tokensOf(state)).toThrow();
    // A pin never falls back to plaintext either.
    const plain = spawnAgent(`ws://127.0.0.1:${t.port}/ws`, state, ['--hub-fingerprint', fp]);
    expect((await plain.exited).code).toBe(1);
    expect(plain.stderr.join('')).toContain('TLS_UNTRUSTED');
    // A malformed fingerprint is a usage error.
    const malformed = spawnAgent(t.wsUrl, state, ['--hub-fingerprint', 'AB:CD']);
    expect((await malformed.exited).code).toBe(2);
    expect(malformed.stderr.join('')).toMatch(/--hub-fingerprint: .*sha256:AB:CD/);
    cleanup(state);
  });

  it('an agent can verify the hub against a CA file instead of a pin', async () => {
    const state = tempDir('hive-agent-');
    const ca = spawnAgent(t.wsUrl, state, ['--name', 'ca-box', '--ca-file', path.join(t.dataDir, 'tls', 'hub-cert.pem')]);
    try {
      await ca.waitLine((l) => l.msg === 'connected');
      expect(tokensOf(state).hubTls).toBeUndefined();
    } finally {
      await ca.kill();
      cleanup(state);
    }
  });
});

describe('TLS: trust on first use, certificate reuse and replacement', () => {
  it('keeps the certificate across restarts; an agent pins it on first use and refuses a replaced one', async () => {
    const dataDir = tempDir();
    let t = await startHub({ dataDir, tls: true });
    const first = t.fingerprint as string;
    const port = t.port;
    const state = path.join(dataDir, 'agent');
    let agent = spawnAgent(t.wsUrl, state, ['--name', 'tofu-box']);
    try {
      const pinned = await agent.waitLine((l) => l.msg === 'pinned the hub certificate (trust on first use)');
      expect(pinned.fingerprint).toBe(first);
      await agent.waitLine((l) => l.msg === 'connected');
      expect(tokensOf(state).hubTls).toBe(first);

      // Restart with the same data dir: same certificate, same fingerprint; the agent reconnects.
      await t.close();
      t = await startHub({ dataDir, port, tls: true });
      expect(t.fingerprint).toBe(first);
      expect(t.hub.tls?.generated).toBe(false);
      const op = await operator(t);
      await op.waitEvent('satellite:online');
      await op.close();
      const cli = await runCli(['server', 'fingerprint', '--tls', '--data', dataDir], {});
      expect(cli.code, cli.stderr).toBe(0);
      expect(cli.stdout.trim()).toBe(first);

      // Replace the certificate: the agent refuses the hub instead of trusting the new one.
      await t.close();
      rmSync(path.join(dataDir, 'tls'), { recursive: true });
      t = await startHub({ dataDir, port, tls: true });
      expect(t.fingerprint).not.toBe(first);
      expect(t.hub.tls?.generated).toBe(true);
      const { code } = await agent.exited;
      expect(code).toBe(1);
      const err = agent.stderr.join('');
      expect(err).toContain('TLS_FINGERPRINT_MISMATCH');
      expect(err).toContain(`fingerprint ${t.fingerprint}, but ${first} is pinned`);
      // Started again, it still refuses: the pin is in its state, not only in memory.
      agent = spawnAgent(t.wsUrl, state, ['--name', 'tofu-box']);
      expect((await agent.exited).code).toBe(1);
      expect(agent.stderr.join('')).toContain('TLS_FINGERPRINT_MISMATCH');
      expect(tokensOf(state).hubTls).toBe(first);
    } finally {
      await agent.kill();
      await t.close();
      cleanup(dataDir);
    }
  });

  it('uses configured cert_file/key_file as they are, and names a bad tls key', async () => {
    const src = tempDir();
    const gen = await startHub({ dataDir: src, tls: true });
    const certFile = path.join(src, 'tls', 'hub-cert.pem');
    const keyFile = path.join(src, 'tls', 'hub-key.pem');
    const expected = gen.fingerprint;
    await gen.close();
    const dataDir = tempDir();
    const t = await startHub({ dataDir, overrides: { tls: { enabled: true, cert_file: certFile, key_file: keyFile } } });
    try {
      expect(t.fingerprint).toBe(expected);
      expect(t.hub.tls).toMatchObject({ generated: false, certFile, keyFile });
      expect((await t.api('GET', '/health')).status).toBe(200);
    } finally {
      await t.close();
    }
    const cfg = path.join(dataDir, 'bad.yaml');
    writeFileSync(cfg, `tls:\n  enabled: true\n  cert_file: ${certFile}\n`);
    const half = await runCli(['server', '--config', cfg, '--data', dataDir, '--print-config'], {});
    expect(half.code).toBe(2);
    expect(half.stderr).toMatch(/tls\.key_file/);
    writeFileSync(cfg, 'tls:\n  enabeld: true\n');
    const typo = await runCli(['server', '--config', cfg, '--print-config'], {});
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/tls.*enabeld/);
    writeFileSync(cfg, `tls:\n  enabled: true\n  cert_file: ${path.join(dataDir, 'missing.pem')}\n  key_file: ${keyFile}\n`);
    const missing = await runCli(['server', '--config', cfg, '--data', dataDir, '--port', '0'], {});
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/tls\.cert_file: .*missing\.pem not found/);
    const env = await runCli(['server', '--print-config', '--data', dataDir], { HIVE_TLS: 'true', HIVE_TLS_SAN: 'a.example,10.0.0.1' });
    expect(env.code, env.stderr).toBe(0);
    expect(parseYaml(env.stdout).tls).toMatchObject({ enabled: true, san: ['a.example', '10.0.0.1'], key_type: 'ec' });
    // Off by default on loopback, on by default elsewhere (SPEC C8).
    expect(parseYaml((await runCli(['server', '--print-config'], {})).stdout).tls.enabled).toBe(false);
    expect(parseYaml((await runCli(['server', '--print-config', '--host', '0.0.0.0'], {})).stdout).tls.enabled).toBe(true);
    expect(parseYaml((await runCli(['server', '--print-config', '--host', '0.0.0.0', '--no-tls'], {})).stdout).tls.enabled).toBe(false);
    cleanup(src);
    cleanup(dataDir);
  });
});

describe('hive start --tls', () => {
  it('prints the fingerprint and its local agent pairs over wss with it', async () => {
    const data = tempDir('hive-start-tls-');
    const proc = spawn(process.execPath, [HIVE_BIN, 'start', '--tls', '--port', '0', '--data', data], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ADMIN_API_KEY: '' },
    });
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    let stderr = '';
    try {
      const banner = await new Promise<{ url: string; key: string; fp: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no banner:\n${stderr}`)), 30_000);
        proc.stderr.on('data', (d) => {
          stderr += d;
          const url = /listening on (https:\/\/[\d.]+:\d+)/.exec(stderr)?.[1];
          const key = /shown ONCE[^\n]*\n\s+(hive_\S+)/.exec(stderr)?.[1];
          const fp = /fingerprint[^\n]*\n\s+(sha256:\S+)/.exec(stderr)?.[1];
          if (url && key && fp) {
            clearTimeout(timer);
            resolve({ url, key, fp });
          }
        });
      });
      expect(banner.fp).toBe(`sha256:${new X509Certificate(readFileSync(path.join(data, 'tls', 'hub-cert.pem'))).fingerprint256}`);
      const op = new HiveClient({
        url: `${banner.url.replace('https', 'wss')}/ws`,
        role: 'operator',
        apiKey: banner.key,
        client: { name: 't', version: '0' },
        reconnect: false,
        tls: { fingerprint: banner.fp },
      });
      const online = new Promise((r) => op.on('event', (name: string) => name === 'satellite:online' && r(name)));
      await op.start();
      const list = async () =>
        JSON.parse(await (await pinnedFetch(`${banner.url}/api/v1/satellites`, { method: 'GET', headers: { 'x-api-key': banner.key } }, banner.fp)).text());
      if (!(await list()).data.some((x: { status: string }) => x.status === 'online')) await online;
      expect((await list()).data[0].status).toBe('online');
      await op.close();
    } finally {
      proc.kill('SIGTERM');
      expect(await exited).toBe(0);
      cleanup(data);
    }
  });
});

describe('TLS in the SDK', () => {
  it('a wrong pin is a typed TLS_FINGERPRINT_MISMATCH naming expected and seen, and the client does not retry', async () => {
    const t = await startHub({ tls: true });
    try {
      const c = new HiveClient({ url: t.wsUrl, role: 'operator', apiKey: t.adminKey, client: { name: 't', version: '0' }, tls: { fingerprint: WRONG } });
      let reconnects = 0;
      c.on('reconnecting', () => reconnects++);
      const err = await c.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ name: 'HiveError', code: 'TLS_FINGERPRINT_MISMATCH', details: { expected: WRONG, seen: t.fingerprint } });
      expect(reconnects).toBe(0);
      await c.close();
      await expect(pinnedFetch(`${t.url}/health`, { method: 'GET', headers: {} }, WRONG)).rejects.toMatchObject({ code: 'TLS_FINGERPRINT_MISMATCH' });
    } finally {
      await t.close();
      cleanup(t.dataDir);
    }
  });
});
