/** Wire protocol version spoken by this build. Peers negotiate the highest common version. */
export const PROTOCOL_VERSION = 1;
export const PROTOCOL_MIN = 1;
export const PROTOCOL_MAX = 1;

export interface VersionRange {
  min: number;
  max: number;
}

/** Highest version both sides speak, or null when the ranges do not overlap. */
export function negotiateVersion(client: VersionRange, server: VersionRange = { min: PROTOCOL_MIN, max: PROTOCOL_MAX }): number | null {
  const hi = Math.min(client.max, server.max);
  const lo = Math.max(client.min, server.min);
  return hi >= lo ? hi : null;
}
