import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, writeFileSync, writeSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { HiveClient } from '@hive/sdk';
import WebSocket from 'ws';
import { forkChild, guard, nextMessage, registerTempDir, stopChild } from '../lib/children.js';
import { AGENT_BIN, BENCH_DIR, log, makeApiKey, pool, startHub } from '../lib/fleet.js';
import { createHubApi } from '../lib/http.js';
import { memoryOf } from '../lib/proc.js';
import { freshDataDir } from '../lib/sim-fleet.js';
import { round, summarize } from '../lib/stats.js';
import { mbps } from './common.js';

const PIPE_WORKER = path.join(BENCH_DIR, 'pipe-worker.js');
/** Lines each PTY session prints (`seq 1 N`, ≈ 230 KB with the tty's \r\n). */
const SESSION_LINES = 40_000;
/** Streams one connection may carry (protocol STREAM_MAX_PER_CONNECTION is 64; keep room). */
const STREAMS_PER_CONNECTION = 50;
/** Per-connection message limit of the sessions hub (see the config below). */
const STREAM_MESSAGE_RATE = 100_000;

/** Max VmRSS of `pid` while `fn` runs, sampled every 50 ms. */
async function withPeakRss(pid, fn) {
  let peak = memoryOf(pid).rssKB;
  const t = setInterval(() => {
    try {
      peak = Math.max(peak, memoryOf(pid).rssKB);
    } catch {
      /* gone */
    }
  }, 50);
  try {
    const value = await fn();
    peak = Math.max(peak, memoryOf(pid).rssKB);
    return { value, peakKB: peak };
  } finally {
    clearInterval(t);
  }
}

/** `bytes` of random data in `file` (1 MiB blocks), and its sha256. */
function makeFile(file, bytes) {
  const h = createHash('sha256');
  const fd = openSync(file, 'w');
  const block = randomBytes(1024 * 1024);
  for (let left = bytes; left > 0; ) {
    const n = Math.min(block.length, left);
    const b = n === block.length ? block : block.subarray(0, n);
    writeSync(fd, b);
    h.update(b);
    left -= n;
  }
  closeSync(fd);
  return h.digest('hex');
}

// ------------------------------------------------------------------------ through the hub

function upload({ port, apiKey, satellite, remotePath, file, size, sha }) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'PUT',
        path: `/api/v1/satellites/${encodeURIComponent(satellite)}/files?path=${encodeURIComponent(remotePath)}`,
        headers: { 'x-api-key': apiKey, 'content-type': 'application/octet-stream', 'content-length': String(size), 'x-hive-sha256': sha },
      },
      (res) => {
        if (process.env.BENCH_DEBUG) log(`upload response ${res.statusCode} ${JSON.stringify(res.headers)}`);
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          let body = null;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString());
          } catch {
            /* not JSON */
          }
          const ok = res.statusCode === 201 && body?.data?.sha256 === sha && body.data.bytes === size;
          resolve({ ok, ms: performance.now() - t0, status: res.statusCode, error: ok ? null : (body?.error ?? `HTTP ${res.statusCode}`) });
        });
      },
    );
    // A hub that refuses early answers and resets the upload: report its answer, not the reset.
    req.on('information', (i) => process.env.BENCH_DEBUG && log(`upload informational ${i.statusCode} ${JSON.stringify(i.headers)}`));
    req.on('error', (err) => setTimeout(() => resolve({ ok: false, ms: performance.now() - t0, error: err.message }), 200));
    createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(req);
  });
}

function download({ port, apiKey, satellite, remotePath, size, sha }) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const h = createHash('sha256');
    let bytes = 0;
    const req = http.get(
      {
        host: '127.0.0.1',
        port,
        path: `/api/v1/satellites/${encodeURIComponent(satellite)}/files?path=${encodeURIComponent(remotePath)}`,
        headers: { 'x-api-key': apiKey },
      },
      (res) => {
        if (process.env.BENCH_DEBUG) log(`download response ${res.statusCode} ${JSON.stringify(res.headers)}`);
        res.on('data', (c) => {
          bytes += c.length;
          h.update(c);
        });
        res.on('end', () => {
          const digest = h.digest('hex');
          const ok = res.statusCode === 200 && bytes === size && digest === sha;
          resolve({
            ok,
            ms: performance.now() - t0,
            status: res.statusCode,
            error: ok ? null : `HTTP ${res.statusCode}, ${bytes} bytes, sha ${digest === sha ? 'ok' : 'mismatch'}`,
          });
        });
        res.on('error', (err) => resolve({ ok: false, ms: performance.now() - t0, error: err.message }));
      },
    );
    req.on('error', (err) => resolve({ ok: false, ms: performance.now() - t0, error: err.message }));
  });
}

// ------------------------------------------------------------------------ raw pipe baseline

async function startPipe(transport) {
  const end = forkChild(PIPE_WORKER, ['end', transport], { label: `pipe end (${transport})` });
  const { port: endPort } = await guard(nextMessage(end, 'listening'), 15_000, 'pipe end listening');
  const relay = forkChild(PIPE_WORKER, ['relay', transport, String(endPort)], { label: `pipe relay (${transport})` });
  const { port } = await guard(nextMessage(relay, 'listening'), 15_000, 'pipe relay listening');
  return { port, stop: () => Promise.all([stopChild(relay, { timeoutMs: 3000 }), stopChild(end, { timeoutMs: 3000 })]) };
}

function tcpTransfer(port, dir, file, size) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const sock = net.connect(port, '127.0.0.1');
    const header = Buffer.alloc(9);
    header[0] = dir.charCodeAt(0);
    header.writeBigUInt64BE(BigInt(size), 1);
    let got = 0;
    sock.on('error', reject);
    sock.on('connect', () => {
      sock.write(header);
      if (dir === 'U') createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(sock, { end: false });
    });
    sock.on('data', (d) => {
      got += d.length;
      if (dir === 'U' && d.includes(0x4b)) {
        sock.destroy();
        resolve({ ms: performance.now() - t0, bytes: size });
      }
    });
    sock.on('end', () => {
      if (dir === 'D') resolve({ ms: performance.now() - t0, bytes: got });
    });
  });
}

function wsTransfer(port, dir, file, size) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false, maxPayload: 2 * 1024 * 1024 });
    let got = 0;
    ws.on('error', reject);
    ws.on('open', () => {
      ws.send(JSON.stringify({ dir, size }));
      if (dir !== 'U') return;
      const rs = createReadStream(file, { highWaterMark: 64 * 1024 });
      rs.on('data', (c) => {
        ws.send(c, { binary: true });
        if (ws.bufferedAmount > 4 * 1024 * 1024) {
          rs.pause();
          const wait = () => (ws.bufferedAmount > 1024 * 1024 ? setTimeout(wait, 1) : rs.resume());
          wait();
        }
      });
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) got += data.length;
      else if (dir === 'U' && data.toString() === 'K') {
        ws.terminate();
        resolve({ ms: performance.now() - t0, bytes: size });
      }
    });
    ws.on('close', () => {
      if (dir === 'D') resolve({ ms: performance.now() - t0, bytes: got });
    });
  });
}

async function rawPipe(transport, file, size) {
  const p = await startPipe(transport);
  try {
    const move = transport === 'tcp' ? tcpTransfer : wsTransfer;
    const rounds = [];
    for (let i = 0; i < 2; i++) {
      const up = await guard(move(p.port, 'U', file, size), 120_000, `${transport} pipe upload`);
      const down = await guard(move(p.port, 'D', file, size), 120_000, `${transport} pipe download`);
      if (down.bytes !== size) throw new Error(`${transport} pipe download moved ${down.bytes} of ${size} bytes`);
      rounds.push({ uploadMBps: mbps(size, up.ms), downloadMBps: mbps(size, down.ms), uploadMs: round(up.ms, 0), downloadMs: round(down.ms, 0) });
    }
    return { rounds, uploadMBps: rounds[1].uploadMBps, downloadMBps: rounds[1].downloadMBps };
  } finally {
    await p.stop();
  }
}

// ------------------------------------------------------------------------ agents

function spawnAgent(i, wsUrl, stateRoot, configFile) {
  const child = forkChild(
    AGENT_BIN,
    ['--hub', wsUrl, '--state', path.join(stateRoot, `agent-${i}`), '--name', `bench-agent-${i}`, '--config', configFile, '--log-level', 'warn'],
    // A fixed shell, so every session runs the same `sh -c`.
    {
      label: `hive-agent ${i}`,
      silent: true,
      env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HIVE_'))), SHELL: '/bin/sh' },
    },
  );
  child.lastLines = [];
  const keep = (l) => {
    child.lastLines.push(l.slice(0, 300));
    if (child.lastLines.length > 10) child.lastLines.shift();
  };
  createInterface({ input: child.stdout }).on('line', keep);
  createInterface({ input: child.stderr }).on('line', keep);
  return child;
}

async function waitAgentsOnline(api, count, needs) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await api.request('GET', '/api/v1/satellites?per_page=100');
    const ready = (r.body?.data ?? []).filter((s) => s.status === 'online' && needs.every((c) => s.approved_commands?.includes(c)));
    if (ready.length >= count) return ready.map((s) => s.id).sort();
    if (Date.now() > deadline)
      throw new Error(`only ${ready.length} of ${count} agents online with ${needs.join(', ')} approved: ${JSON.stringify(r.body).slice(0, 300)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

// ------------------------------------------------------------------------ concurrent sessions

async function concurrentSessions({ hub, api, apiKey, satellites, count }) {
  // Operator connections (the WS/binary path), each carrying at most STREAMS_PER_CONNECTION streams.
  const nOps = Math.ceil(count / STREAMS_PER_CONNECTION);
  const ops = [];
  for (let i = 0; i < nOps; i++) {
    const c = new HiveClient({ url: hub.wsUrl, role: 'operator', apiKey, client: { name: 'hive-bench', version: '0.1.0' }, reconnect: false });
    await c.start();
    ops.push(c);
  }
  try {
    const rssBefore = memoryOf(hub.child.pid).rssKB;
    // 1. Open: REST POST /api/v1/sessions, all at once. The command waits for a line first, so
    //    nothing is printed before an operator is attached.
    const t0 = performance.now();
    const opened = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        api.request(
          'POST',
          '/api/v1/sessions',
          { satellite: satellites[i % satellites.length], cols: 120, rows: 40, command: `read x; seq 1 ${SESSION_LINES}` },
          60_000,
        ),
      ),
    );
    const openAllMs = performance.now() - t0;
    const failedOpen = opened.filter((o) => o.status !== 201);
    if (failedOpen.length)
      throw new Error(`${failedOpen.length} of ${count} session opens failed: ${JSON.stringify(failedOpen[0].body?.error ?? failedOpen[0].error)}`);
    const ids = opened.map((o) => o.body.data.id);
    // 2. Attach each over an operator connection (binary stream), collect the output.
    const sessions = ids.map((id, i) => ({ id, op: ops[i % nOps], bytes: 0, reason: null, doneAt: 0, attachMs: 0 }));
    let closed = 0;
    let allClosed;
    const allDone = new Promise((res) => {
      allClosed = res;
    });
    await pool(sessions, 64, async (s) => {
      const a0 = performance.now();
      const att = await s.op.request('session.attach', { session_id: s.id, mode: 'stream' });
      s.attachMs = performance.now() - a0;
      s.stream = s.op.acceptStream(att.stream_id, {
        onData: (chunk) => {
          s.bytes += chunk.length;
        },
        onClose: ({ reason }) => {
          s.reason = reason;
          s.doneAt = performance.now();
          if (++closed === count) allClosed();
        },
      });
    });
    // 3. Enter in every session at once: each prints SESSION_LINES lines and exits.
    let g0 = 0;
    const { value: runMs, peakKB } = await withPeakRss(hub.child.pid, async () => {
      g0 = performance.now();
      for (const s of sessions) s.stream.write(Buffer.from('\r'));
      await guard(allDone, 180_000, `${count} sessions to finish`);
      return performance.now() - g0;
    });
    const bytes = sessions.reduce((a, s) => a + s.bytes, 0);
    const exited = sessions.filter((s) => s.reason === 'exit:0').length;
    await new Promise((res) => setTimeout(res, 500));
    return {
      sessions: count,
      satellites: satellites.length,
      operatorConnections: nOps,
      command: `read x; seq 1 ${SESSION_LINES}  (sh -c in a PTY; starts on the first Enter)`,
      openMs: summarize(opened.map((o) => o.ms)),
      openAllMs: round(openAllMs, 0),
      attachMs: summarize(sessions.map((s) => s.attachMs)),
      runAllMs: round(runMs, 0),
      sessionDoneMs: summarize(sessions.map((s) => s.doneAt - g0)),
      exitedCleanly: exited,
      endReasons: sessions.reduce((acc, s) => {
        acc[s.reason] = (acc[s.reason] ?? 0) + 1;
        return acc;
      }, {}),
      totalBytes: bytes,
      bytesPerSession: summarize(sessions.map((s) => s.bytes)),
      aggregateMBps: mbps(bytes, runMs),
      hubRssKB: { before: rssBefore, peak: peakKB, after: memoryOf(hub.child.pid).rssKB },
    };
  } finally {
    await Promise.all(ops.map((c) => c.close().catch(() => {})));
  }
}

// ------------------------------------------------------------------------ section

export default {
  id: 'sessions',
  title: 'Session throughput (one 100 MB stream each way) and 200 concurrent PTY sessions',
  spec: 'issue #5: throughput of the binary stream layer through the hub, compared with a raw pipe; many concurrent terminal sessions',
  timeoutMs: (ctx) => 300_000 + ctx.opts.transferMB * 2000 + ctx.opts.sessions * 500,
  async run(ctx) {
    const hubs = [];
    try {
      return await measure(ctx, hubs);
    } catch (err) {
      err.hubLog = hubs[0]?.log;
      throw err;
    }
  },
};

async function measure(ctx, hubs) {
  {
    const size = ctx.opts.transferMB * 1_000_000;
    const count = ctx.opts.sessions;
    const agents = Math.max(ctx.opts.sessionAgents, Math.ceil(count / STREAMS_PER_CONNECTION));
    const perAgent = Math.ceil(count / agents);
    const dataDir = freshDataDir();
    // The agent writes the upload to tmpfs when there is one: the figure is the stream layer's, not the disk's.
    const shm = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
    const files = mkdtempSync(path.join(shm, `hive-bench-${process.pid}-files-`));
    registerTempDir(files);
    const local = path.join(files, 'source.bin');
    log(`  writing a ${ctx.opts.transferMB} MB source file…`);
    const sha = makeFile(local, size);
    const remotePath = path.join(files, 'uploaded.bin');

    const apiKey = makeApiKey();
    const config = {
      // Uploads are file.write, which needs approval by default; this bench is about the bytes.
      approvals: { rules: [{ command: 'file.write', require: false }] },
      agents: { max_sessions_per_agent: Math.max(10, perAgent) },
      // Binary stream frames (data and credit) count against the per-connection message bucket
      // (default 200/s, burst 400); a 100 MB transfer needs ~1,500 of them, and a frame over the
      // limit is dropped, which stalls (lost credit) or corrupts (lost data) the transfer. Raised
      // here so the figure is the stream layer's; see README "Session throughput".
      limits: { messages_per_second: STREAM_MESSAGE_RATE, message_burst: STREAM_MESSAGE_RATE },
    };
    const hub = await startHub(dataDir, apiKey, { config, label: 'sessions hub' });
    hubs.push(hub);
    ctx.defer(() => stopChild(hub.child, { signal: 'SIGTERM', timeoutMs: 15_000 }));
    const api = createHubApi({ host: '127.0.0.1', port: hub.port, apiKey, maxSockets: 256 });
    ctx.defer(async () => api.close());
    const agentCfg = path.join(dataDir, 'bench-agent.json');
    // The default blocked_paths include /dev (so /dev/shm); the allowed path is the bench's own dir there.
    const blocked = ['/etc/shadow', '/etc/gshadow', '/etc/passwd', '/etc/sudoers', '/etc/sudoers.d', '/root', '~/.ssh', '/boot', '/proc', '/sys'];
    writeFileSync(
      agentCfg,
      JSON.stringify({
        policy: {
          allowed_paths: [files],
          blocked_paths: files.startsWith('/dev/') ? blocked : [...blocked, '/dev'],
          allow_file_write: true,
          max_sessions: Math.min(256, perAgent + 2),
        },
      }),
    );
    const stateRoot = path.join(dataDir, 'agents');
    mkdirSync(stateRoot);
    const procs = Array.from({ length: agents }, (_, i) => spawnAgent(i, hub.wsUrl, stateRoot, agentCfg));
    ctx.defer(() => Promise.all(procs.map((c) => stopChild(c, { signal: 'SIGTERM', timeoutMs: 5000 }))));
    const satellites = await waitAgentsOnline(api, agents, ['file.write', 'file.read', 'session.open']);
    log(`  ${agents} agents online`);

    // One stream each way, twice (the first round warms up); through the hub, then raw pipes.
    const rounds = [];
    const rssBefore = memoryOf(hub.child.pid).rssKB;
    let peak = rssBefore;
    for (let i = 0; i < 2; i++) {
      const t = { port: hub.port, apiKey, satellite: satellites[0], remotePath, file: local, size, sha };
      const up = await withPeakRss(hub.child.pid, () => guard(upload(t), 120_000, `upload of ${size} bytes through the hub`));
      if (!up.value.ok) throw new Error(`upload failed: ${JSON.stringify(up.value.error)}`);
      const down = await withPeakRss(hub.child.pid, () => guard(download(t), 120_000, `download of ${size} bytes through the hub`));
      if (!down.value.ok) throw new Error(`download failed: ${down.value.error}`);
      peak = Math.max(peak, up.peakKB, down.peakKB);
      rounds.push({
        uploadMBps: mbps(size, up.value.ms),
        downloadMBps: mbps(size, down.value.ms),
        uploadMs: round(up.value.ms, 0),
        downloadMs: round(down.value.ms, 0),
        peakRssKB: Math.max(up.peakKB, down.peakKB),
      });
      log(`  through the hub, round ${i + 1}: up ${rounds[i].uploadMBps} MB/s, down ${rounds[i].downloadMBps} MB/s`);
    }
    const rssAfter = memoryOf(hub.child.pid).rssKB;
    const tcp = await rawPipe('tcp', local, size);
    log(`  raw TCP relay: up ${tcp.uploadMBps} MB/s, down ${tcp.downloadMBps} MB/s`);
    const ws = await rawPipe('ws', local, size);
    log(`  bare ws relay: up ${ws.uploadMBps} MB/s, down ${ws.downloadMBps} MB/s`);
    const hubUp = rounds[1].uploadMBps;
    const hubDown = rounds[1].downloadMBps;
    const throughput = {
      bytes: size,
      how: 'PUT /api/v1/satellites/:id/files (upload: HTTP body → hub → binary stream → hive-agent → file) and GET (download: file → agent → stream → hub → HTTP response); sha256 checked by hub, agent and bench; figures of the second (warm) round',
      uploadMBps: hubUp,
      downloadMBps: hubDown,
      rounds,
      hubRssKB: { before: rssBefore, peak, after: rssAfter },
      rawPipe: {
        how: 'same topology over loopback, nothing but transport: bench → relay process → end process (TCP: socket.pipe; ws: 64 KiB binary messages forwarded with backpressure)',
        tcp,
        ws,
      },
      ratioToTcp: { upload: round(hubUp / tcp.uploadMBps, 2), download: round(hubDown / tcp.downloadMBps, 2) },
      ratioToWs: { upload: round(hubUp / ws.uploadMBps, 2), download: round(hubDown / ws.downloadMBps, 2) },
    };

    log(`  ${count} concurrent PTY sessions over ${agents} agents…`);
    const concurrent = await concurrentSessions({ hub, api, apiKey, satellites, count });
    log(
      `  sessions: open p50 ${concurrent.openMs.p50} / p95 ${concurrent.openMs.p95} ms, ${concurrent.aggregateMBps} MB/s aggregate, ${concurrent.exitedCleanly}/${count} exit:0`,
    );
    const ok = concurrent.exitedCleanly === count;
    return {
      target: { text: 'no SPEC number; reported against a raw pipe (issue #5)' },
      pass: ok ? null : false,
      status: ok ? 'measured' : `error (${count - concurrent.exitedCleanly} sessions did not exit cleanly)`,
      measured: `up ${hubUp} / down ${hubDown} MB/s (${throughput.ratioToTcp.upload}× / ${throughput.ratioToTcp.download}× raw TCP); ${count} sessions open p50 ${concurrent.openMs.p50} / p95 ${concurrent.openMs.p95} ms, ${concurrent.aggregateMBps} MB/s`,
      agents,
      hubConfig: config,
      throughput,
      concurrent,
    };
  }
}
