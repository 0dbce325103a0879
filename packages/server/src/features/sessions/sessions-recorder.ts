import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes one session as asciicast v2: a JSON header line, then `[seconds, "o"|"i"|"r", data]`
 * event lines. Output bytes are decoded as a UTF-8 stream so a character split across chunks is
 * not mangled.
 */
export class CastRecorder {
  private readonly out: WriteStream;
  private readonly started = Date.now();
  private readonly outDec = new TextDecoder('utf-8', { fatal: false });
  private readonly inDec = new TextDecoder('utf-8', { fatal: false });
  private closed = false;

  constructor(
    readonly file: string,
    header: { width: number; height: number; command?: string | undefined; title?: string | undefined },
  ) {
    this.out = createWriteStream(file, { flags: 'wx', mode: 0o600 });
    this.out.on('error', () => {
      this.closed = true;
    });
    const h: Record<string, unknown> = {
      version: 2,
      width: header.width,
      height: header.height,
      timestamp: Math.floor(this.started / 1000),
      env: { TERM: 'xterm-256color' },
    };
    if (header.command) h.command = header.command;
    if (header.title) h.title = header.title;
    this.out.write(`${JSON.stringify(h)}\n`);
  }

  private line(kind: 'o' | 'i' | 'r', data: string): void {
    if (this.closed || data.length === 0) return;
    const t = Math.round((Date.now() - this.started) / 1000 / 1e-6) * 1e-6;
    this.out.write(`${JSON.stringify([Number(t.toFixed(6)), kind, data])}\n`);
  }

  output(chunk: Uint8Array): void {
    this.line('o', this.outDec.decode(chunk, { stream: true }));
  }
  input(chunk: Uint8Array): void {
    this.line('i', this.inDec.decode(chunk, { stream: true }));
  }
  resize(cols: number, rows: number): void {
    this.line('r', `${cols}x${rows}`);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.line('o', this.outDec.decode());
    this.closed = true;
    return new Promise((resolve) => this.out.end(() => resolve()));
  }
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

/** Deletes recordings older than the retention; returns how many went. */
export async function cleanupRecordings(dir: string, retentionDays: number, now = Date.now()): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  const cutoff = now - retentionDays * 86_400_000;
  let removed = 0;
  for (const name of names) {
    if (!name.endsWith('.cast')) continue;
    const file = path.join(dir, name);
    try {
      if ((await stat(file)).mtimeMs < cutoff) {
        await unlink(file);
        removed++;
      }
    } catch {
      /* raced with another cleanup */
    }
  }
  return removed;
}
