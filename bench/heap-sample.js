#!/usr/bin/env node
/**
 * What the hub allocates during a bench phase that outlives the young generation: the objects
 * every scavenge copies and promotes, and that later cost a mark-compact (on 2 cores, the RTT
 * tail). Attaches to the hub's inspector, samples allocations from the phase's start mark to its
 * end mark, runs two minor GCs (what dies young leaves the sample), then stops (the profiler's
 * full GC keeps what it collects: promoted garbage stays in the profile). Writes the
 * .heapprofile (Chrome DevTools → Memory opens it) and prints the top allocation sites.
 *
 *   BENCH_MARK_LOG=/tmp/marks.log \
 *   BENCH_HUB_NODE_ARGS="--inspect=127.0.0.1:9339 --expose-gc" \
 *     node bench/run.js --suite full --only rtt --name scratch-heap &
 *   node bench/heap-sample.js --port 9339 --marks /tmp/marks.log --phase rtt --out /tmp/rtt.heapprofile
 *
 * Or summarize a profile written before: node bench/heap-sample.js --read FILE [--stacks N]
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { frameName } from './lib/frames.js';

const USAGE = `usage:
  node bench/heap-sample.js --port P --marks FILE --phase NAME --out FILE [--interval BYTES] [--top N] [--stacks N]
  node bench/heap-sample.js --read FILE [--top N] [--stacks N]

  --port P         the hub's inspector port (BENCH_HUB_NODE_ARGS="--inspect=127.0.0.1:P --expose-gc")
  --marks FILE     the bench's mark log (BENCH_MARK_LOG=FILE); emptied first
  --phase NAME     sample from mark NAME.start to NAME.end (e.g. rtt, fanout.warm 1)
  --out FILE       where the .heapprofile goes
  --interval B     mean bytes between samples (default 8192)
  --top N          allocation sites listed (default 30)
  --stacks N       also the N heaviest stacks (default 0)
  --timeout S      give up after S seconds without the marks (default 900)
  --all            every allocation of the phase, also what died young (where the scavenges' work comes from)
`;

let v;
try {
  ({ values: v } = parseArgs({
    options: {
      port: { type: 'string' },
      marks: { type: 'string' },
      phase: { type: 'string' },
      out: { type: 'string' },
      read: { type: 'string' },
      interval: { type: 'string', default: '8192' },
      top: { type: 'string', default: '30' },
      stacks: { type: 'string', default: '0' },
      timeout: { type: 'string', default: '900' },
      all: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (err) {
  process.stderr.write(`heap-sample: ${err.message}\n\n${USAGE}`);
  process.exit(2);
}
if (v.help || (!v.read && !(v.port && v.marks && v.phase && v.out))) {
  process.stdout.write(USAGE);
  process.exit(v.help ? 0 : 2);
}

const fail = (msg) => {
  process.stderr.write(`heap-sample: ${msg}\n`);
  process.exit(2);
};
for (const k of ['interval', 'top', 'stacks', 'timeout']) {
  const n = Number(v[k]);
  if (!Number.isInteger(n) || n < (k === 'stacks' ? 0 : 1)) fail(`--${k} must be a whole number${k === 'stacks' ? '' : ' above 0'} (got ${v[k]})`);
}
if (v.port !== undefined && !/^\d{1,5}$/.test(v.port)) fail(`--port must be a port number (got ${v.port})`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const kb = (b) => `${(b / 1024).toFixed(0).padStart(8)} KB`;

/** Prints allocation sites by self and inclusive size, and optionally the heaviest stacks. */
function summarize(profile, top, stacks) {
  const self = new Map();
  const incl = new Map();
  const byStack = new Map();
  let total = 0;
  const walk = (node, path) => {
    const k = frameName(node.callFrame);
    const here = [...path, k];
    total += node.selfSize;
    self.set(k, (self.get(k) ?? 0) + node.selfSize);
    for (const x of new Set(here)) incl.set(x, (incl.get(x) ?? 0) + node.selfSize);
    if (node.selfSize > 0) {
      const s = here.slice(-8).reverse().join('\n             < ');
      byStack.set(s, (byStack.get(s) ?? 0) + node.selfSize);
    }
    for (const c of node.children) walk(c, here);
  };
  walk(profile.head, []);
  const best = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
  const out = [`sampled ${kb(total).trim()}${v.all ? ' allocated' : ' that outlived the young generation'}`, '', 'self'];
  for (const [k, b] of best(self, top)) out.push(`${kb(b)}  ${k}`);
  out.push('', 'inclusive');
  for (const [k, b] of best(incl, top)) out.push(`${kb(b)}  ${k}`);
  if (stacks > 0) {
    out.push('', 'stacks');
    for (const [k, b] of best(byStack, stacks)) out.push(`${kb(b)}  ${k}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

if (v.read) {
  summarize(JSON.parse(readFileSync(v.read, 'utf8')), Number(v.top), Number(v.stacks));
  process.exit(0);
}

/** Attaches, samples the phase, writes and prints the profile. */
async function sample() {
  const deadline = Date.now() + Number(v.timeout) * 1000;
  /** Set when the hub's inspector connection closes: nothing more will come. */
  let hubGone = false;
  const until = async (what, test) => {
    for (;;) {
      if (hubGone) throw new Error(`the hub closed its inspector connection while waiting for ${what}`);
      const r = await test();
      if (r) return r;
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
      await sleep(100);
    }
  };
  const hasMark = (name) =>
    existsSync(v.marks) &&
    readFileSync(v.marks, 'utf8')
      .split('\n')
      .some((l) => l && JSON.parse(l).phase === name);

  rmSync(v.marks, { force: true });
  const url = await until(`the hub's inspector on port ${v.port}`, async () => {
    try {
      const r = await fetch(`http://127.0.0.1:${v.port}/json/list`);
      return (await r.json())[0]?.webSocketDebuggerUrl;
    } catch {
      return undefined;
    }
  });
  const ws = new WebSocket(url, { maxPayload: 1 << 30 });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let nextId = 0;
  const waiting = new Map();
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString());
    // The hub is exiting (Node waits for an attached inspector to let go before it does).
    if (m.method === 'Runtime.executionContextDestroyed') {
      hubGone = true;
      ws.close();
      return;
    }
    const w = m.id !== undefined ? waiting.get(m.id) : undefined;
    if (!w) return;
    waiting.delete(m.id);
    if (m.error) w.reject(new Error(`${m.error.message} (${m.error.code})`));
    else w.resolve(m.result);
  });
  // The hub went away (stopped, crashed): nothing more will answer.
  ws.on('close', () => {
    hubGone = true;
    for (const w of waiting.values()) w.reject(new Error('the hub closed its inspector connection'));
    waiting.clear();
  });
  const call = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const id = ++nextId;
      if (ws.readyState !== WebSocket.OPEN) {
        reject(new Error('the hub closed its inspector connection'));
        return;
      }
      waiting.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });

  await call('Runtime.enable');
  process.stderr.write(`attached to the hub; waiting for ${v.phase}.start\n`);
  await until(`mark ${v.phase}.start`, () => hasMark(`${v.phase}.start`));
  await call('HeapProfiler.enable');
  await call('HeapProfiler.startSampling', {
    samplingInterval: Number(v.interval),
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: v.all === true,
  });
  const t0 = Date.now();
  process.stderr.write('sampling\n');
  await until(`mark ${v.phase}.end`, () => hasMark(`${v.phase}.end`));
  if (!v.all) {
    // Two scavenges: what is garbage now and still young leaves the sample (it never cost a promotion).
    const gc = await call('Runtime.evaluate', { expression: "typeof gc === 'function' ? (gc({ type: 'minor' }), gc({ type: 'minor' }), 'ok') : 'no gc'" });
    if (gc?.result?.value !== 'ok') process.stderr.write('the hub runs without --expose-gc: garbage still young at the end is counted too\n');
  }
  const { profile } = await call('HeapProfiler.stopSampling');
  ws.close();
  writeFileSync(v.out, JSON.stringify(profile));
  process.stderr.write(`sampled ${((Date.now() - t0) / 1000).toFixed(1)} s; profile in ${v.out}\n`);
  summarize(profile, Number(v.top), Number(v.stacks));
}

sample().catch((err) => {
  process.stderr.write(`heap-sample: ${err.message}\n`);
  process.exit(1);
});
