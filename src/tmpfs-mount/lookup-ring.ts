/**
 * First lookups travel from a serving thread to the main thread through
 * shared memory, not postMessage: a message wakes the main thread's event
 * loop, a cross-CPU wake-up that costs more than the LOOKUP it reports
 * (bench/fuse-read.ts, cold rows). The main thread collects them when it
 * needs them (the runtime API asks, or a thread says the ring is half full).
 *
 * One ring per serving thread: one writer (the thread), one reader (main).
 *
 *   Int32 header:  head @0 (records written, the thread's) | tail @1 (records read, main's) | asked @2
 *   Float64 records from byte 16, RECORD_FIELDS each: node | pid | uid | gid | at (ms since the epoch)
 *
 * Counters wrap at 2^32; differences are taken modulo 2^32.
 */
const RING_RECORDS = 4096;
const RECORD_FIELDS = 5;
const HEADER_BYTES = 16;

export interface LookupReport {
  node: number;
  pid: number;
  uid: number;
  gid: number;
  at: number;
}

export function newLookupRing(): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + RING_RECORDS * RECORD_FIELDS * 8);
}

export class LookupRing {
  readonly #header: Int32Array;
  readonly #records: Float64Array;

  constructor(shared: SharedArrayBuffer) {
    this.#header = new Int32Array(shared, 0, 3);
    this.#records = new Float64Array(shared, HEADER_BYTES, RING_RECORDS * RECORD_FIELDS);
  }

  /**
   * The writer's side. Returns 'full' when there is no room (the caller
   * reports another way), 'ask' the first time the ring passes half full
   * (the caller should tell the reader), else 'ok'.
   */
  push(r: LookupReport): 'ok' | 'ask' | 'full' {
    const head = Atomics.load(this.#header, 0);
    const used = (head - Atomics.load(this.#header, 1)) >>> 0;
    if (used >= RING_RECORDS) return 'full';
    const at = ((head >>> 0) % RING_RECORDS) * RECORD_FIELDS;
    this.#records[at] = r.node;
    this.#records[at + 1] = r.pid;
    this.#records[at + 2] = r.uid;
    this.#records[at + 3] = r.gid;
    this.#records[at + 4] = r.at;
    // Publishes the record: the reader loads head before it reads records.
    Atomics.store(this.#header, 0, (head + 1) | 0);
    if (used + 1 >= RING_RECORDS / 2 && Atomics.compareExchange(this.#header, 2, 0, 1) === 0) return 'ask';
    return 'ok';
  }

  /** The reader's side: every record written so far, oldest first. */
  drain(take: (r: LookupReport) => void): void {
    const head = Atomics.load(this.#header, 0);
    let tail = Atomics.load(this.#header, 1);
    while (tail !== head) {
      const at = ((tail >>> 0) % RING_RECORDS) * RECORD_FIELDS;
      const r = this.#records;
      take({ node: r[at]!, pid: r[at + 1]!, uid: r[at + 2]!, gid: r[at + 3]!, at: r[at + 4]! });
      tail = (tail + 1) | 0;
    }
    Atomics.store(this.#header, 1, tail);
    Atomics.store(this.#header, 2, 0);
  }
}
