import path from 'node:path';
import type { HubConfigInput } from '@hive/server';
import { startHub, type TestHub } from '../helpers.js';

/** `startHub` with the vault/tasks/chat config sections given as top-level options. */
export function startAiHub(
  opts: {
    dataDir?: string;
    adminKey?: string;
    vault?: NonNullable<HubConfigInput['vault']>;
    tasks?: NonNullable<HubConfigInput['tasks']>;
    chat?: NonNullable<HubConfigInput['chat']>;
  } = {},
): Promise<TestHub> {
  const { vault, tasks, chat, ...rest } = opts;
  return startHub({ ...rest, overrides: { ...(vault ? { vault } : {}), ...(tasks ? { tasks } : {}), ...(chat ? { chat } : {}) } });
}

export const STANDINS = path.dirname(new URL(import.meta.url).pathname);
