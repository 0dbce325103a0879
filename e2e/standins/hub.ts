import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildHub, type HubConfigInput, loadConfig, mintToken } from '@hive/server';
import pino from 'pino';
import { type TestHub, tempDir } from '../helpers.js';

/**
 * Like helpers.ts `startHub`, plus the vault/tasks/chat config sections (startHub's overrides do
 * not carry them). A real hub on an ephemeral port with a real SQLite file; logs captured.
 */
export async function startAiHub(
  opts: {
    dataDir?: string;
    adminKey?: string;
    vault?: NonNullable<HubConfigInput['vault']>;
    tasks?: NonNullable<HubConfigInput['tasks']>;
    chat?: NonNullable<HubConfigInput['chat']>;
  } = {},
): Promise<TestHub> {
  const dataDir = opts.dataDir ?? tempDir();
  const adminKey = opts.adminKey ?? mintToken('hive').token;
  const file = path.join(dataDir, 'server.yaml');
  writeFileSync(
    file,
    JSON.stringify({
      ...(opts.vault ? { vault: opts.vault } : {}),
      ...(opts.tasks ? { tasks: opts.tasks } : {}),
      ...(opts.chat ? { chat: opts.chat } : {}),
    }),
  );
  const config = loadConfig({ file, env: { ADMIN_API_KEY: adminKey }, overrides: { port: 0, dataDir, host: '127.0.0.1' } });
  const logs: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void logs.push(s) });
  const hub = await buildHub(config, { logger });
  const { url, port } = await hub.listen();
  const api = async (method: string, p: string, body?: unknown, key: string = adminKey) => {
    const res = await fetch(`${url}${p}`, {
      method,
      headers: { 'x-api-key': key, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: any;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { raw: text };
    }
    return { status: res.status, body: parsed };
  };
  return { hub, url, wsUrl: `${url.replace('http', 'ws')}/ws`, port, adminKey, dataDir, logs, close: () => hub.close(), api };
}

export const STANDINS = path.dirname(new URL(import.meta.url).pathname);
