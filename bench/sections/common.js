import { round } from '../lib/stats.js';

/**
 * pass/miss of a measured figure against a limit ("below" or "above"). When the run is smaller
 * than the scale the target is stated for (`n` < `targetN`), `status` says so: the figure is
 * real, the claim is not the target's.
 */
export function verdict(value, limit, { below = true, n, targetN } = {}) {
  if (value === null || value === undefined || Number.isNaN(value)) return { pass: false, status: 'miss (no figure)' };
  const pass = below ? value < limit : value > limit;
  const scaled = n !== undefined && targetN !== undefined && n < targetN;
  return { pass, status: `${pass ? 'pass' : 'miss'}${scaled ? ` (at N=${n}, target is stated for ${targetN})` : ''}` };
}

/** All of a list of verdicts. */
export function allOf(...vs) {
  const pass = vs.every((v) => v.pass);
  const scaled = vs.find((v) => v.status.includes('(at N='));
  return { pass, status: `${pass ? 'pass' : 'miss'}${scaled ? scaled.status.slice(scaled.status.indexOf(' (')) : ''}` };
}

export const mbps = (bytes, ms) => (ms > 0 ? round(bytes / 1e6 / (ms / 1000), 1) : null);
