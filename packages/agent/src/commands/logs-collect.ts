import type { LogsCollectParams, LogsCollectResult } from '@hive/protocol';
import { fitBudget, type LogEnv, readLogLines } from './logs-source.js';

/** `logs.collect`: the newest lines of the journal, dmesg or an allowed file, bounded. */
export async function logsCollect(params: LogsCollectParams, env: LogEnv): Promise<LogsCollectResult> {
  const { lines, more } = await readLogLines(params, params.lines, env);
  const fit = fitBudget(lines);
  return { source: params.source, lines: fit.lines, truncated: more || fit.cut };
}
