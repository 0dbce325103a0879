#!/usr/bin/env node
/**
 * Top frames of a hub CPU profile within a phase of the bench:
 *
 *   node bench/profile-top.js DIR [phase] [N]
 *
 * DIR is what --hub-cpu-prof wrote (a .cpuprofile and phases.json); `phase` is a prefix of the
 * marks (e.g. `fanout`: from the first `fanout…start` to the last `fanout…end`; default: the
 * whole profile). Prints self time and inclusive time by function (top N, default 25).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { frameName } from './lib/frames.js';

const [dir, phase, topArg] = process.argv.slice(2);
if (!dir) {
  process.stderr.write('usage: node bench/profile-top.js DIR [phase] [N]\n');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
if (!file) throw new Error(`no .cpuprofile in ${dir}`);
const prof = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
let lo = -Infinity;
let hi = Infinity;
if (phase) {
  const marks = JSON.parse(readFileSync(path.join(dir, 'phases.json'), 'utf8')).filter((m) => m.phase.startsWith(phase));
  const starts = marks.filter((m) => m.phase.endsWith('start'));
  const ends = marks.filter((m) => m.phase.endsWith('end'));
  if (!starts.length || !ends.length) throw new Error(`no ${phase}…start/end marks in phases.json`);
  lo = Math.min(...starts.map((m) => m.monotonicUs));
  hi = Math.max(...ends.map((m) => m.monotonicUs));
}
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n) => frameName(n.callFrame);
const self = new Map();
const incl = new Map();
let t = prof.startTime;
let total = 0;
for (let i = 0; i < prof.samples.length; i++) {
  t += prof.timeDeltas[i];
  const dt = prof.timeDeltas[i + 1] ?? 0;
  if (t < lo || t > hi) continue;
  total += dt;
  let node = byId.get(prof.samples[i]);
  const k = name(node);
  self.set(k, (self.get(k) ?? 0) + dt);
  const seen = new Set();
  while (node) {
    const kk = name(node);
    if (!seen.has(kk)) {
      incl.set(kk, (incl.get(kk) ?? 0) + dt);
      seen.add(kk);
    }
    node = byId.get(parent.get(node.id));
  }
}
const ms = (us) => (us / 1000).toFixed(0).padStart(7);
const pct = (us) => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
process.stdout.write(`${file}${phase ? ` — phase ${phase}` : ''}: ${(total / 1000).toFixed(0)} ms sampled\n\nself time\n`);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${ms(v)} ms ${pct(v)}  ${k}\n`);
process.stdout.write('\ninclusive time\n');
for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${ms(v)} ms ${pct(v)}  ${k}\n`);
