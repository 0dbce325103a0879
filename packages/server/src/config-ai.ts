import { z } from 'zod';

/**
 * Config sections of the vault, task spawner and chat router (seed 000). Owned by those
 * features; `config.ts` embeds them. Unknown keys are errors like everywhere else.
 */
export const VaultConfig = z.object({}).strict().default({});
export const TasksConfig = z.object({}).strict().default({});
export const ChatConfig = z.object({}).strict().default({});
