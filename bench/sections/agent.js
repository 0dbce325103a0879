import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BENCH_DIR } from '../lib/fleet.js';
import { allOf, verdict } from './common.js';

const MODULE = path.join(BENCH_DIR, 'agent-footprint.js');
const IDLE_SECONDS = 30;

/** The real hive-agent's footprint, measured by bench/agent-footprint.js (written separately). */
export default {
  id: 'agent',
  title: 'Agent footprint (idle RSS, CPU, time to ready)',
  spec: 'Agent: idle RSS under 50 MB, under 1% CPU, ready in under 2 s (seed 004)',
  timeoutMs: () => 120_000 + IDLE_SECONDS * 1000,
  async run() {
    const target = { idleRssMB: 50, cpuPercent: 1, readyMs: 2000, text: 'idle RSS < 50 MB, CPU < 1 %, ready < 2 s' };
    let mod;
    try {
      mod = existsSync(MODULE) ? await import(pathToFileURL(MODULE).href) : undefined;
    } catch (err) {
      return { target, pass: null, status: 'not available', measured: null, error: `bench/agent-footprint.js failed to load: ${err.message}` };
    }
    if (typeof mod?.measureAgentFootprint !== 'function') {
      return { target, pass: null, status: 'not available', measured: null, note: 'bench/agent-footprint.js (measureAgentFootprint) is not there yet' };
    }
    const m = await mod.measureAgentFootprint({ idleSeconds: IDLE_SECONDS });
    const v = allOf(verdict(m.idle_rss_mb, 50), verdict(m.cpu_percent, 1), verdict(m.ready_ms, 2000));
    // The module's own per-figure verdicts stay as `checks`; `pass` is this section's boolean.
    const { pass: checks, ...figures } = m;
    return {
      target,
      ...figures,
      checks,
      ...v,
      measured: `ready ${m.ready_ms} ms, idle RSS ${m.idle_rss_mb} MB, CPU ${m.cpu_percent} %`,
      idleSeconds: IDLE_SECONDS,
    };
  },
};
