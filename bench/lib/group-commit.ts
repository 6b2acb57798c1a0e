/**
 * The floor for durable appends in Node: a bare group-commit loop on a
 * fs.promises FileHandle. Writers queue a record; one flusher writes whatever
 * is queued with a single writev and one fdatasync, then releases that batch.
 * No framing, hashing, JSON or state: what the engine is measured against.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';

export interface FlushStats {
  batches: number;
  records: number;
  /** Total time inside writev + fdatasync, ms. */
  flushMs: number;
  /** Total time inside fdatasync alone, ms (undefined when it cannot be seen). */
  syncMs?: number;
}

export const meanBatch = (s: FlushStats): number => s.records / s.batches;

export class RawGroupCommit {
  readonly stats: FlushStats = { batches: 0, records: 0, flushMs: 0, syncMs: 0 };
  private queue: { record: Buffer; done: () => void; fail: (err: Error) => void }[] = [];
  private flushing = false;
  private position = 0;

  private constructor(private readonly file: FileHandle) {}

  static async open(path: string): Promise<RawGroupCommit> {
    return new RawGroupCommit(await open(path, 'wx', 0o600));
  }

  append(record: Buffer): Promise<void> {
    return new Promise((done, fail) => {
      this.queue.push({ record, done, fail });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        const t0 = performance.now();
        const records = batch.map((w) => w.record);
        const total = records.reduce((n, r) => n + r.length, 0);
        const { bytesWritten } = await this.file.writev(records, this.position);
        if (bytesWritten !== total) throw new Error(`short writev: ${bytesWritten} of ${total} bytes`);
        const t1 = performance.now();
        await this.file.datasync();
        const t2 = performance.now();
        this.position += total;
        this.stats.batches++;
        this.stats.records += batch.length;
        this.stats.flushMs += t2 - t0;
        this.stats.syncMs! += t2 - t1;
        for (const w of batch) w.done();
      } catch (err) {
        for (const w of [...batch, ...this.queue]) w.fail(err as Error);
        this.queue = [];
      }
    }
    this.flushing = false;
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

/**
 * Watches the embedded engine's group commits from outside: wraps the private
 * write-ahead log's `append(records)` to count batches and time each flush.
 * Diagnostic only; if the engine's internals change it reports nothing
 * rather than failing the bench.
 */
export function watchEngineFlushes(backend: object): FlushStats | undefined {
  const wal = (backend as { wal?: { append?: (records: Buffer[]) => Promise<void> } }).wal;
  if (!wal || typeof wal.append !== 'function') return undefined;
  const stats: FlushStats = { batches: 0, records: 0, flushMs: 0 };
  const original = wal.append.bind(wal);
  wal.append = async (records: Buffer[]) => {
    const t0 = performance.now();
    await original(records);
    stats.flushMs += performance.now() - t0;
    stats.batches++;
    stats.records += records.length;
  };
  return stats;
}
