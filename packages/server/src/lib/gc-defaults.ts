import v8 from 'node:v8';

/**
 * V8 settings for a hub process (`hive server`, `hive start`), chosen with the bench at 10,000
 * satellites and 1,000 commands a second on 2 cores (docs/performance-log.md, 2026-11-29):
 *
 * - `--no-allocation-site-pretenuring`: V8 otherwise decides, during a burst like 10,000 connects,
 *   that objects of some object literals usually survive and allocates them in the old generation
 *   from then on. Per-command objects of those literals (an audit row, a finished job) were then
 *   born old, and everything they pointed to was kept by every scavenge until the next full GC:
 *   scavenges over 5 ms went from 197 to 21 in a 60 s run.
 * - `--heap-growing-percent=100`: after a full GC the old generation may grow to twice its live
 *   size before the next one (V8's own factor was as low as 1.1 here: a full GC every ~10 s, each
 *   stalling requests for ~100 ms on 2 cores). Costs memory under sustained load (up to the live
 *   heap again), not at rest.
 *
 * Together: no full GC in a 60 s run at 1,000 commands/s, RTT p99 9.9 ms (18.6 ms with V8's
 * defaults, 41 ms with the first alone, 15.6 ms with the second alone). A flag the operator gave
 * node (`node --heap-growing-percent=… hive.js server`) wins. Returns what it set.
 */
export function applyHubGcDefaults(execArgv: readonly string[] = process.execArgv): string[] {
  const given = (name: string) => execArgv.some((a) => a.replace(/_/g, '-').includes(name));
  const set: string[] = [];
  if (!given('allocation-site-pretenuring')) set.push('--no-allocation-site-pretenuring');
  if (!given('heap-growing-percent')) set.push('--heap-growing-percent=100');
  for (const f of set) v8.setFlagsFromString(f);
  return set;
}
