import path from 'node:path';
import pino, { type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';

export interface LoggingConfig {
  level: string;
  format: 'json' | 'text';
  file?: string | undefined;
}

/**
 * The hub's logger from `logging` (seed 003 §4): JSON lines (or readable text) on stdout, and
 * with `file` JSON lines appended to that file as well (its directory is created; a relative
 * path is under `server.data_dir`).
 */
export function createHubLogger(cfg: LoggingConfig, dataDir: string): Logger {
  const streams: pino.StreamEntry[] = [
    {
      level: cfg.level as pino.Level,
      stream: cfg.format === 'text' ? textStream() : pino.destination({ dest: 1, sync: false }),
    },
  ];
  if (cfg.file) {
    // A relative path is under server.data_dir (the seed's ./logs/server.log → <data_dir>/logs/server.log).
    const dest = path.isAbsolute(cfg.file) ? cfg.file : path.resolve(dataDir, cfg.file);
    streams.push({ level: cfg.level as pino.Level, stream: pino.destination({ dest, mkdir: true, sync: false }) });
  }
  return pino({ level: cfg.level, base: { svc: 'hive-hub' } }, pino.multistream(streams));
}

/**
 * Readable text on stdout, formatted and written in the logging call itself: pino-pretty's own
 * stream formats in a transform that a quick exit (SIGTERM right after start) could cut off.
 */
function textStream(): pino.DestinationStream {
  const pretty = prettyFactory({ colorize: process.stdout.isTTY === true, translateTime: 'SYS:standard', ignore: 'pid,hostname,svc' });
  const out = pino.destination({ dest: 1, sync: true });
  return {
    write(line: string) {
      const text = pretty(line);
      if (text) out.write(text);
    },
  };
}
