import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';

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

/**
 * Deletes recording files older than the retention that no session row tracks (the rows' own
 * recordings go through the sessions table, see the sessions service); returns how many went.
 */
export async function cleanupOrphanRecordings(
  dir: string,
  retentionDays: number,
  tracked: (file: string) => Promise<boolean>,
  now = Date.now(),
): Promise<number> {
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
      if ((await stat(file)).mtimeMs >= cutoff || (await tracked(file))) continue;
      await unlink(file);
      removed++;
    } catch {
      /* raced with another cleanup */
    }
  }
  return removed;
}

// CSI, OSC (BEL or ST terminated), DCS/SOS/PM/APC strings, two-byte escapes.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching terminal control sequences is the point
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[PX^_][^\x1b]*(?:\x1b\\)?|\x1b[ -/]*[0-~]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters other than \n and \t go
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/g;

/**
 * Terminal output as plain text: escape sequences removed, CRLF → LF, a carriage return
 * overwrites its line (progress bars keep their last state), backspace erases.
 */
export function plainText(raw: string): string {
  const noEsc = raw.replace(ANSI, '');
  return noEsc
    .replace(/\r+\n/g, '\n')
    .split('\n')
    .map((line) => {
      let l = line.includes('\r') ? line.slice(line.lastIndexOf('\r') + 1) : line;
      if (l.includes('\b')) {
        const out: string[] = [];
        for (const ch of l) {
          if (ch === '\b') out.pop();
          else out.push(ch);
        }
        l = out.join('');
      }
      return l.replace(CONTROL, '');
    })
    .join('\n');
}

/** Keeps the first (or last) `max` bytes of a growing text, UTF-8 safe. */
export class BoundedText {
  private parts: string[] = [];
  private bytes = 0;
  truncated = false;
  constructor(
    private readonly max: number,
    private readonly keep: 'head' | 'tail' = 'head',
  ) {}

  push(s: string): void {
    if (!s) return;
    const n = Buffer.byteLength(s);
    if (this.keep === 'head') {
      if (this.bytes >= this.max) {
        this.truncated = true;
        return;
      }
      if (this.bytes + n > this.max) {
        this.parts.push(
          Buffer.from(s)
            .subarray(0, this.max - this.bytes)
            .toString('utf8')
            .replace(/\uFFFD$/, ''),
        );
        this.bytes = this.max;
        this.truncated = true;
        return;
      }
      this.parts.push(s);
      this.bytes += n;
      return;
    }
    this.parts.push(s);
    this.bytes += n;
    if (this.bytes > this.max * 2) this.compact();
  }

  private compact(): void {
    const all = Buffer.from(this.parts.join(''));
    if (all.length <= this.max) return;
    this.truncated = true;
    this.parts = [
      all
        .subarray(all.length - this.max)
        .toString('utf8')
        .replace(/^\uFFFD/, ''),
    ];
    this.bytes = Buffer.byteLength(this.parts[0] as string);
  }

  get full(): boolean {
    return this.keep === 'head' && this.bytes >= this.max;
  }

  text(): string {
    if (this.keep === 'tail') this.compact();
    return this.parts.join('');
  }
}

/**
 * The replayed output of a recording as plain text (what the terminal showed, escape sequences
 * stripped), bounded to `maxBytes` from the start or the end. Reads the file as a stream.
 */
export async function replayText(
  file: string,
  opts: { maxBytes: number; from: 'start' | 'end' },
): Promise<{ text: string; truncated: boolean; events: number }> {
  const out = new BoundedText(opts.maxBytes, opts.from === 'start' ? 'head' : 'tail');
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Number.POSITIVE_INFINITY });
  let first = true;
  let events = 0;
  // Output is stripped in slices: an escape sequence split across events is joined first.
  let pending = '';
  const flush = (all: boolean) => {
    const cut = all ? pending.length : Math.max(0, pending.lastIndexOf('\n') + 1);
    if (cut === 0) return;
    out.push(plainText(pending.slice(0, cut)));
    pending = pending.slice(cut);
  };
  try {
    for await (const line of rl) {
      if (first) {
        first = false;
        continue;
      }
      if (!line.trim()) continue;
      let ev: unknown;
      try {
        ev = JSON.parse(line);
      } catch {
        continue;
      }
      if (!Array.isArray(ev) || ev[1] !== 'o' || typeof ev[2] !== 'string') continue;
      events++;
      pending += ev[2];
      if (pending.length > 64 * 1024) flush(false);
      if (pending.length > 256 * 1024) flush(true);
      if (out.full) break;
    }
  } finally {
    rl.close();
  }
  flush(true);
  return { text: out.text(), truncated: out.truncated, events };
}
