/**
 * `new Date(ms).toISOString()`, from the UTC getters. Node 20's V8 looks up the local time zone
 * in Date.prototype.toISOString even though it prints UTC: the first call initializes ICU's time
 * zone support (~1 MB of ICU code and data mapped into the process, SPEC: idle RSS under 50 MB).
 * The agent's idle path (status reports, log lines) stamps times with this instead. Same string
 * (time.test.ts); years outside 0–9999 go to toISOString.
 */
export function isoTimestamp(ms: number = Date.now()): string {
  const d = new Date(ms);
  const year = d.getUTCFullYear();
  if (!(year >= 0 && year <= 9999)) return d.toISOString(); // extended years; throws on an invalid date, as toISOString does
  const p2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
  const ms3 = d.getUTCMilliseconds();
  return `${String(year).padStart(4, '0')}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}T${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}.${ms3 < 10 ? `00${ms3}` : ms3 < 100 ? `0${ms3}` : ms3}Z`;
}
