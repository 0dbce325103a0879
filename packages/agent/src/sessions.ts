import { createRequire } from 'node:module';
import os from 'node:os';
import { HiveError, type StreamEndpoint } from '@hive/protocol';
import type { RequestContext } from '@hive/sdk';
import type { IPty } from 'node-pty';
import { z } from 'zod';
import type { AgentLog } from './commands/index.js';
import type { Policy } from './policy.js';
import { commandRefusal, SESSION_OPEN_COMMAND } from './policy.js';

/** Params of the `session.open` node command (signed invoke from the hub). */
export const SessionOpenNodeParams = z
  .object({
    session_id: z.string().min(1).max(64),
    stream_id: z.number().int().min(1).max(0xffffffff),
    cols: z.number().int().min(1).max(1000),
    rows: z.number().int().min(1).max(1000),
    argv: z.array(z.string().max(4096)).min(1).max(256).optional(),
    command: z.string().max(4096).optional(),
  })
  .strict();

export const SessionResizeNodeParams = z
  .object({ session_id: z.string().min(1).max(64), cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) })
  .strict();

type PtyModule = typeof import('node-pty');
let ptyModule: PtyModule | undefined;
function loadPty(): PtyModule {
  // Loaded on first use so the agent starts where the native module is missing.
  if (!ptyModule) {
    try {
      ptyModule = createRequire(import.meta.url)('node-pty') as PtyModule;
    } catch (err) {
      throw new HiveError('SERVICE_NOT_RUNNING', `Terminal sessions need node-pty: ${(err as Error).message}`);
    }
  }
  return ptyModule;
}

interface LiveSession {
  pty: IPty;
  stream: StreamEndpoint;
}

/**
 * PTY sessions on the node. Each session is bound to one binary stream the hub opened: PTY
 * output goes out as stream data (the PTY is paused while the stream is out of credit), stream
 * data is PTY input, and the stream closes with `exit:<code>` (or `signal:<n>`) when the process
 * ends. Closing or losing the stream kills the process.
 */
export function createSessionHost(policy: Policy, log: AgentLog) {
  const live = new Map<string, LiveSession>();

  function open(raw: unknown, req: Partial<RequestContext>): { session_id: string; pid: number; shell: string } {
    const refusal = commandRefusal(policy.config, SESSION_OPEN_COMMAND);
    if (refusal) throw new HiveError('PERMISSION_DENIED', refusal, { command: SESSION_OPEN_COMMAND });
    const parsed = SessionOpenNodeParams.safeParse(raw);
    if (!parsed.success) throw new HiveError('INVALID_PARAMETERS', 'Invalid params for session.open');
    const p = parsed.data;
    if (!req.acceptStream) throw new HiveError('INTERNAL_ERROR', 'This connection cannot carry streams');
    if (live.size >= policy.config.policy.max_sessions) {
      throw new HiveError('SESSION_LIMIT', `This satellite runs at most ${policy.config.policy.max_sessions} sessions`);
    }
    if (live.has(p.session_id)) throw new HiveError('CONFLICT', `Session ${p.session_id} is already open`);
    const shell = process.env.SHELL || '/bin/sh';
    const argv = p.argv ?? (p.command ? [shell, '-c', p.command] : [shell, '-l']);
    const pty = loadPty().spawn(argv[0] as string, argv.slice(1), {
      name: 'xterm-256color',
      cols: p.cols,
      rows: p.rows,
      cwd: os.homedir(),
      env: { ...process.env, TERM: 'xterm-256color' } as Record<string, string>,
      encoding: null,
    } as Parameters<PtyModule['spawn']>[2]);
    let paused = false;
    const stream = req.acceptStream(p.stream_id, {
      onData: (chunk) => pty.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) as unknown as string),
      onDrain: () => {
        if (paused) {
          paused = false;
          pty.resume();
        }
      },
      onClose: ({ reason }) => {
        if (live.get(p.session_id)?.pty === pty) {
          live.delete(p.session_id);
          try {
            pty.kill('SIGHUP');
          } catch {
            /* already gone */
          }
          log('info', 'session closed', { session: p.session_id, reason });
        }
      },
    });
    live.set(p.session_id, { pty, stream });
    pty.onData((d: string | Buffer) => {
      const buf = typeof d === 'string' ? Buffer.from(d, 'utf8') : d;
      if (!stream.write(buf) && !paused) {
        paused = true;
        pty.pause();
      }
    });
    pty.onExit(({ exitCode, signal }) => {
      const reason = signal ? `signal:${signal}` : `exit:${exitCode}`;
      live.delete(p.session_id);
      // Output still queued for credit goes first, then the close.
      stream.end(reason);
      log('info', 'session ended', { session: p.session_id, reason });
    });
    log('info', 'session opened', { session: p.session_id, pid: pty.pid, cols: p.cols, rows: p.rows });
    return { session_id: p.session_id, pid: pty.pid, shell: argv[0] as string };
  }

  function resize(raw: unknown): { resized: boolean } {
    const parsed = SessionResizeNodeParams.safeParse(raw);
    if (!parsed.success) throw new HiveError('INVALID_PARAMETERS', 'Invalid params for session.resize');
    const s = live.get(parsed.data.session_id);
    if (!s) throw new HiveError('SESSION_NOT_FOUND', `No session ${parsed.data.session_id} on this satellite`);
    s.pty.resize(parsed.data.cols, parsed.data.rows);
    return { resized: true };
  }

  return {
    open,
    resize,
    count: () => live.size,
    closeAll(reason: string): void {
      for (const [id, s] of live) {
        live.delete(id);
        s.stream.close(reason);
        try {
          s.pty.kill('SIGHUP');
        } catch {
          /* gone */
        }
      }
    },
  };
}

export type SessionHost = ReturnType<typeof createSessionHost>;
