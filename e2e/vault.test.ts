import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, runCli, type TestHub, tempDir } from './helpers.js';
import { startAiHub } from './standins/hub.js';

// Test keys: distinctive so any leak is found by a plain substring search.
const KEY_A = 'sk-ant-TESTVALUE-aaaa1111bbbb2222cccc3333';
const KEY_O = 'sk-openai-TESTVALUE-dddd4444eeee5555ffff';
const PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'an entirely different passphrase';
const AGENT = path.join(path.dirname(new URL(import.meta.url).pathname), 'standins/agent.mjs');
const HUB = {
  vault: { max_unlock_failures: 3 },
  tasks: { agents: { 'uses-anthropic': { command: [process.execPath, AGENT, '{prompt}'], providers: [{ provider: 'anthropic', env: 'ANTHROPIC_API_KEY' }] } } },
};

/** The `hive` CLI; key values arrive on stdin. */
const cli = (args: string[], env: NodeJS.ProcessEnv, stdin = '') => runCli(args, env, stdin);

function snapshot(dataDir: string): { meta: unknown[]; entries: unknown[] } {
  const db = new Database(path.join(dataDir, 'hive.db'), { readonly: true });
  try {
    return {
      meta: db.prepare('select * from vault_meta order by id').all(),
      entries: db.prepare('select * from vault_entries order by provider, key_id').all(),
    };
  } finally {
    db.close();
  }
}

describe('key vault (real hub, real SQLite, scrypt N=2^17)', () => {
  const dataDir = tempDir();
  let t: TestHub;
  const responses: string[] = [];
  const api = async (method: string, p: string, body?: unknown, key?: string) => {
    const r = await t.api(method, p, body, key);
    responses.push(JSON.stringify(r.body));
    return r;
  };
  const allLogs: string[] = [];

  afterAll(async () => {
    await t?.close();
    cleanup(dataDir);
  });

  it('init → add keys → restart → locked (only status/unlock answer) → unlock → lock wipes', async () => {
    t = await startAiHub({ dataDir, ...HUB });
    const env = { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey };
    expect((await api('GET', '/api/v1/vault/status')).body.data).toMatchObject({ initialized: false, unlocked: false });
    expect((await api('GET', '/api/v1/vault/keys')).body.error.code).toBe('VAULT_NOT_INITIALIZED');

    const init = await cli(['vault', 'init', '--json'], { ...env, HIVE_VAULT_PASSWORD: PASSWORD });
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(init.stdout)).toMatchObject({ initialized: true, unlocked: true, kdf: { alg: 'scrypt', log_n: 17, r: 8, p: 1 } });
    expect((await api('POST', '/api/v1/vault/init', { password: 'another password' })).body.error.code).toBe('CONFLICT');

    // key values from stdin, never argv
    const add = await cli(['vault', 'add-key', 'anthropic', '--json'], env, `${KEY_A}\n`);
    expect(add.code, add.stderr).toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({ provider: 'anthropic', key_id: 'main' });
    const add2 = await api('POST', '/api/v1/vault/keys', { provider: 'openai', key_id: 'work', value: KEY_O });
    expect(add2.status).toBe(200);
    expect((await api('POST', '/api/v1/vault/keys', { provider: 'openai', key_id: 'work', value: KEY_O })).body.error.code).toBe('CONFLICT');
    expect((await api('POST', '/api/v1/vault/keys', { provider: 'openai', value: 'has space inside' })).body.error.code).toBe('INVALID_PARAMETERS');

    const list = await cli(['vault', 'list-keys', '--json'], env);
    const keys = JSON.parse(list.stdout) as { provider: string; key_id: string; fingerprint: string }[];
    expect(keys.map((k) => `${k.provider}/${k.key_id}`)).toEqual(['anthropic/main', 'openai/work']);
    expect(keys[0].fingerprint).toMatch(/^[0-9a-f]{12}$/);
    expect(list.stdout).not.toContain('TESTVALUE');
    const fingerprints = keys.map((k) => k.fingerprint);

    // a read-only key may see status and the list, not change anything
    const ro = t.hub.consoleKey;
    expect((await api('GET', '/api/v1/vault/status', undefined, ro)).status).toBe(200);
    expect((await api('POST', '/api/v1/vault/lock', undefined, ro)).body.error.code).toBe('FORBIDDEN');

    allLogs.push(...t.logs);
    await t.close();
    t = await startAiHub({ dataDir, adminKey: t.adminKey, ...HUB });
    expect((await api('GET', '/api/v1/vault/status')).body.data).toMatchObject({ initialized: true, unlocked: false, key_count: 2 });
    for (const [m, p, b] of [
      ['GET', '/api/v1/vault/keys', undefined],
      ['POST', '/api/v1/vault/keys', { provider: 'groq', value: 'gsk-something-long' }],
      ['DELETE', '/api/v1/vault/keys/openai/work', undefined],
    ] as const) {
      const r = await api(m, p, b);
      expect(r.status, p).toBe(423);
      expect(r.body.error.code).toBe('VAULT_LOCKED');
    }

    const unlock = await cli(['vault', 'unlock', '--json'], { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey, HIVE_VAULT_PASSWORD: PASSWORD });
    expect(unlock.code, unlock.stderr).toBe(0);
    expect(JSON.parse(unlock.stdout)).toMatchObject({ unlocked: true });
    const after = (await api('GET', '/api/v1/vault/keys')).body.data as { fingerprint: string }[];
    expect(after.map((k) => k.fingerprint)).toEqual(fingerprints);

    const locked = await api('POST', '/api/v1/vault/lock');
    expect(locked.body.data).toMatchObject({ unlocked: false });
    expect((await api('GET', '/api/v1/vault/keys')).body.error.code).toBe('VAULT_LOCKED');
    expect((await api('POST', '/api/v1/vault/unlock', { password: PASSWORD })).body.data.unlocked).toBe(true);
  }, 180_000);

  it('a wrong password is AUTH_INVALID, changes nothing, and is rate limited', async () => {
    await api('POST', '/api/v1/vault/lock');
    const before = snapshot(dataDir);
    const wrong = await api('POST', '/api/v1/vault/unlock', { password: 'not the password' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('AUTH_INVALID');
    expect((await api('GET', '/api/v1/vault/status')).body.data.unlocked).toBe(false);
    const wrongPasswd = await api('POST', '/api/v1/vault/passwd', { password: 'still not it', new_password: NEW_PASSWORD });
    expect(wrongPasswd.body.error.code).toBe('AUTH_INVALID');
    expect(snapshot(dataDir)).toEqual(before);
    // the third failure inside the window (max_unlock_failures: 3) trips the limiter
    expect((await api('POST', '/api/v1/vault/unlock', { password: 'third wrong one' })).body.error.code).toBe('AUTH_INVALID');
    const limited = await api('POST', '/api/v1/vault/unlock', { password: PASSWORD });
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('RATE_LIMITED');
    expect(snapshot(dataDir)).toEqual(before);
    const audit = await api('GET', '/api/v1/audit/logs?action=vault.unlock&result=failure');
    expect(audit.body.data.length).toBeGreaterThanOrEqual(2);
  });

  it('passwd re-wraps only the data key; old password stops working', async () => {
    allLogs.push(...t.logs);
    await t.close();
    // a fresh process has a fresh limiter
    t = await startAiHub({ dataDir, adminKey: t.adminKey, ...HUB });
    const before = snapshot(dataDir);
    const res = await cli(['vault', 'passwd', '--json'], {
      HIVE_URL: t.url,
      HIVE_API_KEY: t.adminKey,
      HIVE_VAULT_PASSWORD: PASSWORD,
      HIVE_VAULT_NEW_PASSWORD: NEW_PASSWORD,
    });
    expect(res.code, res.stderr).toBe(0);
    const after = snapshot(dataDir);
    expect(after.entries).toEqual(before.entries);
    expect(after.meta).not.toEqual(before.meta);
    expect((await api('POST', '/api/v1/vault/unlock', { password: PASSWORD })).body.error.code).toBe('AUTH_INVALID');
    expect((await api('POST', '/api/v1/vault/unlock', { password: NEW_PASSWORD })).body.data.unlocked).toBe(true);
    expect((await api('GET', '/api/v1/vault/keys')).body.data).toHaveLength(2);
  }, 120_000);

  it('a ciphertext swapped between two entries fails to decrypt (AAD binds provider + key id)', async () => {
    expect((await api('POST', '/api/v1/vault/keys', { provider: 'openai', key_id: 'main', value: `${KEY_O}-main` })).status).toBe(200);
    const db = new Database(path.join(dataDir, 'hive.db'));
    const get = (p: string, k: string) =>
      (db.prepare('select ciphertext from vault_entries where provider=? and key_id=?').get(p, k) as { ciphertext: string }).ciphertext;
    const a = get('anthropic', 'main');
    const o = get('openai', 'main');
    db.prepare('update vault_entries set ciphertext=? where provider=? and key_id=?').run(o, 'anthropic', 'main');
    db.prepare('update vault_entries set ciphertext=? where provider=? and key_id=?').run(a, 'openai', 'main');
    db.close();
    // a use of the key (a task that needs it) must fail, not hand out the other value
    const r = await api('POST', '/api/v1/tasks', { agent_type: 'uses-anthropic', description: 'env' });
    expect(r.status).toBe(500);
    expect(r.body.error.message).toContain('integrity');
    expect(t.logs.join('\n')).toContain('vault entry failed to decrypt');
    await api('DELETE', '/api/v1/vault/keys/anthropic/main');
    await api('DELETE', '/api/v1/vault/keys/openai/main');
  });

  it('no key value or password in logs, audit, API responses or the database file', async () => {
    const r = await cli(['vault', 'remove-key', 'openai', '--id', 'work', '--json'], { HIVE_URL: t.url, HIVE_API_KEY: t.adminKey });
    expect(r.code, r.stderr).toBe(0);
    const audit = await api('GET', '/api/v1/audit/logs?action=vault.*&per_page=500');
    const actions = (audit.body.data as { action: string }[]).map((e) => e.action);
    for (const a of ['vault.init', 'vault.unlock', 'vault.lock', 'vault.passwd', 'vault.key_added', 'vault.key_removed']) expect(actions).toContain(a);
    allLogs.push(...t.logs);
    await t.hub.services.audit.flush();
    const haystacks = {
      logs: allLogs.join('\n'),
      responses: responses.join('\n'),
      db:
        readFileSync(path.join(dataDir, 'hive.db')).toString('latin1') +
        (existsSync(path.join(dataDir, 'hive.db-wal')) ? readFileSync(path.join(dataDir, 'hive.db-wal')).toString('latin1') : ''),
    };
    for (const [where, text] of Object.entries(haystacks)) {
      for (const secret of ['TESTVALUE', PASSWORD, NEW_PASSWORD]) expect(text.includes(secret), `${secret} in ${where}`).toBe(false);
    }
  });
});
