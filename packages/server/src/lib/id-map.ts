/**
 * A string-keyed map for long-lived tables whose entries come and go all the time (jobs in
 * flight, requests awaiting an answer): thousands of inserts and deletes a second.
 *
 * Why not `Map`: V8 stores a Map's (and a Set's) entries in a hash table that is replaced by a
 * new one every few inserts when entries are also deleted (deleted slots are only reclaimed by a
 * rehash), and each replaced table keeps a pointer to its successor (for live iterators). Once a
 * Map has lived long enough to be in the old generation, V8 allocates every new table there too.
 * The replaced tables are garbage in the old generation that still point at the entries of their
 * moment, and a scavenge treats old-to-young pointers as live, so every value that was ever in
 * such a table (a job, its promise, its closures, everything they hold) is copied and then
 * promoted, to be found dead only by the next mark-compact. Measured on the hub at 1,000
 * commands a second: ~0.7 MB promoted per scavenge, a mark-compact every ~15 s, and those were
 * the slowest requests of the RTT bench (docs/performance-log.md, 2026-11-29). A standalone
 * churn test promoted 754 MB with a Map and 29 KB with this.
 *
 * Here the entries live in a null-prototype object, which V8 keeps in dictionary mode: its
 * tables are allocated young when small, a replaced one points nowhere, and deleted entries are
 * cleared. Keys must not look like array indices ("123"): those would go to the object's
 * elements, which works but is slower. Iteration order is not insertion order.
 */
export class IdMap<V> {
  private table: Record<string, V> = Object.create(null);
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(key: string): V | undefined {
    return this.table[key];
  }

  has(key: string): boolean {
    return key in this.table;
  }

  set(key: string, value: V): this {
    if (!(key in this.table)) this.count++;
    this.table[key] = value;
    return this;
  }

  /** Whether there was an entry. */
  delete(key: string): boolean {
    if (!(key in this.table)) return false;
    delete this.table[key];
    this.count--;
    return true;
  }

  clear(): void {
    this.table = Object.create(null);
    this.count = 0;
  }

  keys(): string[] {
    return Object.keys(this.table);
  }

  values(): V[] {
    return Object.values(this.table);
  }

  /** A snapshot: entries may be deleted while it is walked. */
  entries(): [string, V][] {
    return Object.entries(this.table);
  }
}

/**
 * Promises in flight, counted, so that shutdown can wait for them: without keeping them in a Set,
 * which at thousands a second churns like a Map (see `IdMap`).
 */
export class InFlightCount {
  private n = 0;
  private waiters: (() => void)[] = [];

  get size(): number {
    return this.n;
  }

  add(p: Promise<unknown>): void {
    this.n++;
    const done = () => {
      if (--this.n > 0 || this.waiters.length === 0) return;
      const w = this.waiters;
      this.waiters = [];
      for (const resolve of w) resolve();
    };
    p.then(done, done);
  }

  /** Resolves once nothing is in flight (at once when nothing is). */
  idle(): Promise<void> {
    return this.n === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}
