import { readFileSync } from 'node:fs';
import path from 'node:path';
import { encodeStreamFrame, STREAM_MAX_CHUNK, STREAM_WINDOW, type StreamEndpoint } from '@hive/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentProc, cleanup, operator, spawnAgent, startHub, type TestHub } from './helpers.js';

type Op = Awaited<ReturnType<typeof operator>>;

/** Collects a stream's output and resolves waits on it. */
function collector() {
  let text = '';
  const waiters = new Set<() => void>();
  let closed: { reason: string } | undefined;
  const onChange = () => {
    for (const w of waiters) w();
  };
  return {
    get text() {
      return text;
    },
    get closed() {
      return closed;
    },
    handlers: {
      onData: (c: Uint8Array) => {
        text += Buffer.from(c).toString('utf8');
        onChange();
      },
      onClose: (info: { reason: string }) => {
        closed = info;
        onChange();
      },
    },
    until(pred: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
      if (pred()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what}; output so far: ${JSON.stringify(text.slice(-500))}`));
        }, timeoutMs);
        const check = () => {
          if (pred()) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
      });
    },
  };
}

async function until<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('terminal sessions through the hub (real agent, real PTY)', () => {
  let t: TestHub;
  let agent: AgentProc;
  let satId: string;
  let op: Op;

  const openStream = async (o: Op, params: Record<string, unknown>, opts: { manualCredit?: boolean } = {}) => {
    const res = await o.request<{ session: any; attach: { stream_id: number } }>('session.open', { satellite: satId, ...params });
    const out = collector();
    const stream: StreamEndpoint = o.acceptStream(res.attach.stream_id, out.handlers, opts);
    return { session: res.session, stream, out };
  };

  beforeAll(async () => {
    t = await startHub();
    op = await operator(t);
    agent = spawnAgent(t.wsUrl, path.join(t.dataDir, 'agent'), ['--name', 'pty'], { SHELL: '/bin/sh' });
    satId = (await op.waitEvent('satellite:online', (p) => p.slug?.startsWith('pty'))).id;
  });
  afterAll(async () => {
    await op?.close();
    await agent?.kill();
    await t?.close();
    cleanup(t.dataDir);
  });

  it('opens a PTY, runs echo, resizes (stty size), exits with the code, records and replays', async () => {
    const { session, stream, out } = await openStream(op, { cols: 80, rows: 24 });
    expect(session.status).toBe('active');
    stream.write(Buffer.from('echo hi-$((40+2))\n'));
    await out.until(() => out.text.includes('hi-42'), 'echo output');
    const resized = await op.request('session:resize', { session_id: session.id, cols: 101, rows: 33 });
    expect(resized).toMatchObject({ cols: 101, rows: 33 });
    stream.write(Buffer.from('stty size\n'));
    await out.until(() => out.text.includes('33 101'), 'stty size after resize');
    const ended = op.waitEvent('session:ended', (p) => p.session_id === session.id);
    stream.write(Buffer.from('exit 7\n'));
    await out.until(() => !!out.closed, 'stream close');
    expect(out.closed?.reason).toBe('exit:7');
    expect(await ended).toMatchObject({ reason: 'exited', exit_code: 7 });
    const got = await t.api('GET', `/api/v1/sessions/${session.id}`);
    expect(got.body.data).toMatchObject({ status: 'ended', exit_code: 7, end_reason: 'exited' });
    const list = await t.api('GET', `/api/v1/satellites/${satId}/sessions`);
    expect(list.body.data.map((s: any) => s.id)).toContain(session.id);

    // The recording replays to the same text.
    const rec = await fetch(`${t.url}/api/v1/sessions/${session.id}/recording`, { headers: { 'x-api-key': t.adminKey } });
    expect(rec.status).toBe(200);
    const lines = (await rec.text()).trim().split('\n');
    const header = JSON.parse(lines[0] as string);
    expect(header).toMatchObject({ version: 2, width: 80, height: 24 });
    const events = lines.slice(1).map((l) => JSON.parse(l) as [number, string, string]);
    const replay = events
      .filter((e) => e[1] === 'o')
      .map((e) => e[2])
      .join('');
    expect(replay).toBe(out.text);
    expect(events.some((e) => e[1] === 'r' && e[2] === '101x33')).toBe(true);
    expect(events.every((e, i) => i === 0 || e[0] >= (events[i - 1] as [number, string, string])[0])).toBe(true);
    expect(events.some((e) => e[1] === 'i')).toBe(false); // input is not recorded by default

    // Audited with the recording path.
    await until(async () => {
      const a = await t.api('GET', `/api/v1/audit/logs?action=session.closed&target_id=${session.id}`);
      return a.body.data?.[0];
    }, 'session.closed audit');
    const closedAudit = (await t.api('GET', `/api/v1/audit/logs?action=session.closed&target_id=${session.id}`)).body.data[0];
    expect(closedAudit.details).toMatchObject({ reason: 'exited', exit_code: 7, recording: path.join(t.dataDir, 'recordings', `${session.id}.cast`) });
    const openedAudit = (await t.api('GET', `/api/v1/audit/logs?action=session.opened&target_id=${session.id}`)).body.data[0];
    expect(openedAudit.details.recording).toBe(closedAudit.details.recording);
    expect(readFileSync(closedAudit.details.recording, 'utf8').split('\n')[0]).toContain('"version":2');
  });

  it('speaks the base64 JSON path of seed 003 §6.1 (session:input / session:output / session:ended)', async () => {
    const res = await op.request<{ session: any; attach: any }>('session.open', {
      satellite: satId,
      attach: 'events',
      command: 'read line; echo "got:$line"; exit 3',
    });
    expect(res.attach).toMatchObject({ mode: 'events' });
    expect(res.attach.stream_id).toBeUndefined();
    const id = res.session.id;
    let text = '';
    const onEvent = (name: string, p: any) => {
      if (name === 'session:output' && p.session_id === id) text += Buffer.from(p.output, 'base64').toString('utf8');
    };
    op.on('event', onEvent);
    await op.request('session:input', { session_id: id, input: Buffer.from('b64-in\n').toString('base64') });
    // The process ends after its output: wait for the end, then look at everything that came.
    const ended = await op
      .waitEvent('session:ended', (p) => p.session_id === id)
      .catch((e: Error) => {
        throw new Error(`${e.message}; output so far: ${JSON.stringify(text)}`);
      });
    op.off('event', onEvent);
    expect(text).toContain('got:b64-in');
    expect(ended).toMatchObject({ reason: 'exited', exit_code: 3 });
  });

  it('DELETE terminates a session; the node kills its process', async () => {
    const created = await t.api('POST', '/api/v1/sessions', { satellite: satId, cols: 80, rows: 24, command: 'sleep 1000' });
    expect(created.status).toBe(201);
    const s = created.body.data;
    expect(s.pid).toBeGreaterThan(0);
    expect(pidAlive(s.pid)).toBe(true);
    const del = await t.api('DELETE', `/api/v1/sessions/${s.id}`);
    expect(del.status).toBe(200);
    expect((await t.api('GET', `/api/v1/sessions/${s.id}`)).body.data).toMatchObject({ status: 'ended', end_reason: 'terminated' });
    await until(async () => !pidAlive(s.pid), 'PTY process gone');
    expect((await t.api('GET', '/api/v1/sessions/sess_nope')).body.error.code).toBe('SESSION_NOT_FOUND');
  });

  it('an operator disconnect ends its session and the node kills the process', async () => {
    const other = await operator(t);
    const { session } = await openStream(other, { command: 'sleep 1000' });
    expect(pidAlive(session.pid)).toBe(true);
    const ended = op.waitEvent('session:ended', (p) => p.session_id === session.id);
    await other.close();
    expect(await ended).toMatchObject({ reason: 'operator_disconnected' });
    await until(async () => !pidAlive(session.pid), 'PTY process gone after operator disconnect');
  });

  it('a slow reader holds the PTY back: hub buffering stays bounded by the window', async () => {
    // The reader grants its initial window and then never consumes.
    const { session, stream, out } = await openStream(op, { command: 'yes 0123456789abcdefghijklmnopqrstuvwxyz' }, { manualCredit: true });
    await out.until(() => out.text.length >= STREAM_WINDOW - STREAM_MAX_CHUNK, 'the first window of output');
    // Hub side: the relay queue (≤ the window it granted the node) + what waits for the reader's credit (< 2 chunks).
    const bound = STREAM_WINDOW + 2 * STREAM_MAX_CHUNK;
    let last = 0;
    // Sampled over a while: the producer is fast, so without backpressure these would grow by MBs.
    for (let i = 0; i < 10; i++) {
      const v = (await t.api('GET', `/api/v1/sessions/${session.id}`)).body.data;
      expect(v.buffered_bytes).toBeLessThanOrEqual(bound);
      // What left the node: the reader's window + the hub's buffers, never more.
      expect(v.bytes_out).toBeLessThanOrEqual(2 * STREAM_WINDOW + 2 * STREAM_MAX_CHUNK);
      // Per-connection stream counters of the hub (queued for credit + received, not consumed).
      const ready = (await t.api('GET', '/health/ready')).body;
      expect(ready.stream_buffered_bytes).toBeLessThanOrEqual(bound);
      last = v.bytes_out;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(out.text.length).toBeLessThanOrEqual(STREAM_WINDOW);
    // Consuming lets it flow again.
    stream.consumed(out.text.length);
    await until(async () => (await t.api('GET', `/api/v1/sessions/${session.id}`)).body.data.bytes_out > last + STREAM_MAX_CHUNK, 'flow resumes');
    stream.write(Buffer.from([3])); // Ctrl-C
    await op.request('session.close', { session_id: session.id });
    await out.until(() => !!out.closed, 'close after terminate');
  });

  it('binary frames: data for no open stream is BAD_FRAME; binary frames count against the rate limit', async () => {
    const raw = await operator(t);
    try {
      const ws = (raw as unknown as { ws: { send(b: Uint8Array): void } }).ws;
      ws.send(encodeStreamFrame(424242, 'data', new Uint8Array([1, 2, 3])));
      expect((await raw.waitEvent('error', (e) => e.code === 'BAD_FRAME')).message).toContain('open stream');
      ws.send(new Uint8Array([1, 2]));
      await raw.waitEvent('error', (e) => e.code === 'BAD_FRAME' && !e.message.includes('424242'));
      // Stray credits are dropped quietly, but each one still costs a token of the message rate limit.
      for (let i = 0; i < 450; i++) ws.send(encodeStreamFrame(8, 'credit', new Uint8Array(4)));
      expect(await raw.waitEvent('error', (e) => e.code === 'RATE_LIMITED')).toMatchObject({ code: 'RATE_LIMITED' });
    } finally {
      await raw.close();
    }
  });

  it('an agent disconnect ends its sessions', async () => {
    const { session, out } = await openStream(op, { command: 'sleep 1000' });
    const ended = op.waitEvent('session:ended', (p) => p.session_id === session.id);
    await agent.kill('SIGKILL');
    expect(await ended).toMatchObject({ reason: 'satellite_disconnected' });
    await out.until(() => !!out.closed, 'operator stream closed');
    await until(async () => !pidAlive(session.pid), 'PTY process gone after agent death');
  });
});

describe('session limits and idle timeout', () => {
  let t: TestHub;
  let agent: AgentProc;
  let satId: string;

  beforeAll(async () => {
    t = await startHub({ overrides: { agents: { max_sessions_per_agent: 2 }, sessions: { idle_timeout: '1500ms' } } });
    const op = await operator(t);
    agent = spawnAgent(t.wsUrl, path.join(t.dataDir, 'agent'), ['--name', 'lim'], { SHELL: '/bin/sh' });
    satId = (await op.waitEvent('satellite:online')).id;
    await op.close();
  });
  afterAll(async () => {
    await agent?.kill();
    await t?.close();
    cleanup(t.dataDir);
  });

  it('max_sessions_per_agent → SESSION_LIMIT (429); idle sessions end with idle_timeout', async () => {
    const op = await operator(t);
    const a = await t.api('POST', '/api/v1/sessions', { satellite: satId, command: 'sleep 1000' });
    const b = await t.api('POST', '/api/v1/sessions', { satellite: satId, command: 'sleep 1000' });
    expect([a.status, b.status]).toEqual([201, 201]);
    const c = await t.api('POST', '/api/v1/sessions', { satellite: satId, command: 'sleep 1000' });
    expect(c.status).toBe(429);
    expect(c.body.error.code).toBe('SESSION_LIMIT');
    const endedA = await op.waitEvent('session:ended', (p) => p.session_id === a.body.data.id);
    expect(endedA.reason).toBe('idle_timeout');
    await op.waitEvent('session:ended', (p) => p.session_id === b.body.data.id);
    // Room again once they ended.
    const d = await t.api('POST', '/api/v1/sessions', { satellite: satId, command: 'sleep 1000' });
    expect(d.status).toBe(201);
    await t.api('DELETE', `/api/v1/sessions/${d.body.data.id}`);
    await op.close();
  });

  it('the approval policy applies to session.open (no decision → denied) and the node policy switch allow_shell is honoured', async () => {
    const t2 = await startHub({ overrides: { approvals: { require: ['session.open'], timeout: 1000 } } });
    const op = await operator(t2);
    const cfg = path.join(t2.dataDir, 'noshell.json');
    (await import('node:fs')).writeFileSync(cfg, JSON.stringify({ policy: { allow_shell: false } }));
    const shellAgent = spawnAgent(t2.wsUrl, path.join(t2.dataDir, 'a1'), ['--name', 'gated'], { SHELL: '/bin/sh' });
    const noShell = spawnAgent(t2.wsUrl, path.join(t2.dataDir, 'a2'), ['--name', 'noshell', '--config', cfg]);
    try {
      const gated = (await op.waitEvent('satellite:online', (p) => p.slug?.startsWith('gated'))).id;
      const locked = (await op.waitEvent('satellite:online', (p) => p.slug?.startsWith('noshell'))).id;
      const g = await t2.api('POST', '/api/v1/sessions', { satellite: gated });
      expect(g.body.error.code).toBe('APPROVAL_DENIED');
      expect(g.body.error.message).toMatch(/timed out/);
      const n = await t2.api('POST', '/api/v1/sessions', { satellite: locked });
      expect(n.body.error.code).toBe('UNKNOWN_COMMAND');
      expect((await t2.api('GET', `/api/v1/satellites/${locked}`)).body.data.policy.switches.allow_shell).toBe(false);
    } finally {
      await op.close();
      await shellAgent.kill();
      await noShell.kill();
      await t2.close();
      cleanup(t2.dataDir);
    }
  });
});
