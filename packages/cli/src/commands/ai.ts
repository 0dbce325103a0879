import type { Command } from 'commander';

/** `hive vault|tasks|chat …` (seed 000). */
export function addAiCommands(_program: Command): void {}
