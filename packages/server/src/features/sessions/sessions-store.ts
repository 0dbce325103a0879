/** One terminal session as the hub knows it. */
export interface SessionRecord {
  id: string;
  satellite_id: string;
  satellite_slug: string;
  status: 'opening' | 'active' | 'ended';
  cols: number;
  rows: number;
  command: string | null;
  actor: { type: string; id: string; name: string; ip?: string };
  created_at: string;
  ended_at: string | null;
  end_reason: string | null;
  exit_code: number | null;
  pid: number | null;
  /** asciicast v2 file under <data_dir>/recordings, when recording is on. */
  recording: string | null;
  bytes_out: number;
  bytes_in: number;
}

export interface SessionView extends SessionRecord {
  /** Bytes the hub holds for this session right now (relay queue); bounded by the stream window. */
  buffered_bytes: number;
  /** Operator connections attached. */
  attached: number;
}

/** Ended sessions kept for lookups (their recordings stay on disk until the retention cleanup). */
const MAX_ENDED = 1000;

/**
 * Sessions live in memory: a PTY does not survive its hub connection, so a restart ends them all.
 * The audit log (`session.opened` / `session.closed`) is the durable record.
 */
export function createSessionsStore() {
  const byId = new Map<string, SessionRecord>();
  return {
    add(rec: SessionRecord): void {
      byId.set(rec.id, rec);
      if (byId.size > MAX_ENDED * 2) {
        for (const [id, r] of byId) {
          if (byId.size <= MAX_ENDED) break;
          if (r.status === 'ended') byId.delete(id);
        }
      }
    },
    get: (id: string) => byId.get(id),
    bySatellite: (satelliteId: string) => [...byId.values()].filter((r) => r.satellite_id === satelliteId).reverse(),
  };
}
