// scratch: hub CPU per fan-out, many runs (not committed)
import { startFleet } from './lib/sim-fleet.js';
import { cpuMsOf } from './lib/proc.js';
import { stopChild } from './lib/children.js';
const n = Number(process.argv[2] ?? 5000), runs = Number(process.argv[3] ?? 12);
const f = await startFleet({ n, workers: Math.max(2, Math.ceil(n / 2500)), connectConcurrency: 256, tags: ['bench'] });
const cpu = [], wall = [], wcpu = [];
for (let i = 0; i < runs; i++) {
  const c0 = cpuMsOf(f.hub.child.pid); const w0 = f.workers.reduce((s, w) => s + cpuMsOf(w.pid), 0);
  const t0 = performance.now();
  const r = await f.api.request('POST', '/api/v1/exec', { target: { tag: 'bench' }, command: 'system.info', params: {} }, 120000);
  wall.push(performance.now() - t0); cpu.push(cpuMsOf(f.hub.child.pid) - c0); wcpu.push(f.workers.reduce((s, w) => s + cpuMsOf(w.pid), 0) - w0);
  if (r.body?.data?.summary?.succeeded !== n) console.log('FAIL', r.status, JSON.stringify(r.body).slice(0, 200));
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const skip = (a) => a.slice(2);
console.log(JSON.stringify({ n, hubCpuMin: Math.min(...skip(cpu)), hubCpuMed: med(skip(cpu)), wallMin: Math.round(Math.min(...skip(wall))), wallMed: Math.round(med(skip(wall))), workersCpuMed: med(skip(wcpu)), cpu }));
await f.close();
process.exit(0);
