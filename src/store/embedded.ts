/**
 * The embedded storage engine: the whole key space in memory, made durable by
 * the write-ahead log (group commit: every commit queued while a flush is in
 * flight shares the next fdatasync) and periodic snapshots that let old log
 * segments go.
 *
 * Files in the data directory:
 *   snapshot-<rev>.json   all keys as of <rev>, with the chain hash at <rev> and a checksum
 *   wal-<rev>.log         commits from <rev> on (see wal.ts)
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, CorruptionError, type Backend, type KvEntry, type KvEvent, type KvOp, type KvTxn } from './backend.js';
import { writeFileAtomic } from '../files/index.js';
import { decodeCommit, encodeCommit } from './commit-codec.js';
import { readSegment, WalWriter } from './wal.js';

export interface EmbeddedOptions {
  dir: string;
  /** Take a snapshot (and start a new log segment) after this many log bytes. */
  snapshotAfterBytes?: number;
  /** Told about a torn tail cut off during recovery. */
  onTornTail?: (file: string, bytes: number) => void;
}

interface StoredValue {
  value: string;
  modRevision: number;
}

interface Pending {
  revision: number;
  ops: KvOp[];
  payload: Buffer;
  resolve: (revision: number) => void;
  reject: (err: Error) => void;
}

interface SnapshotFile {
  revision: number;
  chainHash: string;
  entries: [string, StoredValue][];
  checksum?: string;
}

const pad = (n: number) => String(n).padStart(20, '0');
const segmentName = (rev: number) => `wal-${pad(rev)}.log`;
const snapshotName = (rev: number) => `snapshot-${pad(rev)}.json`;
const revisionOf = (file: string) => Number(file.replace(/^\D+-(\d+)\..*$/, '$1'));

export class EmbeddedBackend implements Backend {
  private readonly committed = new Map<string, StoredValue>();
  /** Latest state of keys written by commits that are queued but not yet durable (null = deleted). */
  private readonly pendingState = new Map<string, { value: string | null; modRevision: number }>();
  private queue: Pending[] = [];
  private flushing = false;
  private failure: Error | undefined;
  private committedRevision = 0;
  private nextRevision = 1;
  private wal!: WalWriter;
  private readonly listeners = new Set<(event: KvEvent) => void>();
  private readonly snapshotAfterBytes: number;
  /** Counters for metrics and tests: how well group commit is batching. */
  readonly stats = { commits: 0, flushes: 0, snapshots: 0 };

  private constructor(private readonly options: EmbeddedOptions) {
    this.snapshotAfterBytes = options.snapshotAfterBytes ?? 64 * 1024 * 1024;
  }

  static async open(options: EmbeddedOptions): Promise<EmbeddedBackend> {
    const backend = new EmbeddedBackend(options);
    await backend.recover();
    return backend;
  }

  async get(key: string): Promise<KvEntry | undefined> {
    const stored = this.committed.get(key);
    return stored && { key, ...stored };
  }

  async list(prefix: string): Promise<KvEntry[]> {
    const out: KvEntry[] = [];
    for (const [key, stored] of this.committed) if (key.startsWith(prefix)) out.push({ key, ...stored });
    return out.sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  revision(): number {
    return this.committedRevision;
  }

  watch(listener: (event: KvEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  commit(txn: KvTxn): Promise<number> {
    if (this.failure) return Promise.reject(this.failure);
    for (const condition of txn.conditions ?? []) {
      if (this.latestModRevision(condition.key) !== condition.modRevision) return Promise.reject(new ConflictError(condition.key));
    }
    const revision = this.nextRevision++;
    for (const op of txn.ops) this.pendingState.set(op.key, { value: op.type === 'put' ? op.value : null, modRevision: revision });
    const payload = encodeCommit(revision, txn.ops);
    return new Promise((resolve, reject) => {
      this.queue.push({ revision, ops: txn.ops, payload, resolve, reject });
      if (!this.flushing) void this.flushLoop();
    });
  }

  async close(): Promise<void> {
    while (this.flushing) await new Promise((r) => setImmediate(r));
    await this.wal.close();
  }

  private latestModRevision(key: string): number {
    const pending = this.pendingState.get(key);
    if (pending) return pending.value === null ? 0 : pending.modRevision;
    return this.committed.get(key)?.modRevision ?? 0;
  }

  /** Writes whatever is queued in one append + fdatasync, repeatedly, until the queue is empty. */
  private async flushLoop(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        try {
          // Framed here, not at enqueue: a snapshot between batches starts a new segment, and the chain must follow the segment.
          await this.wal.append(batch.map((p) => this.wal.frame(p.payload)));
        } catch (err) {
          // After a failed fsync the page cache cannot be trusted: stop taking writes.
          this.failure = new Error(`write-ahead log write failed (${(err as Error).message}); the store must be restarted`);
          for (const p of [...batch, ...this.queue]) p.reject(this.failure);
          this.queue = [];
          return;
        }
        this.stats.flushes++;
        this.stats.commits += batch.length;
        for (const p of batch) this.apply(p.revision, p.ops);
        for (const p of batch) p.resolve(p.revision);
        if (this.wal.bytes >= this.snapshotAfterBytes) await this.snapshot();
      }
    } finally {
      this.flushing = false;
    }
  }

  private apply(revision: number, ops: KvOp[]): void {
    for (const op of ops) {
      if (op.type === 'put') this.committed.set(op.key, { value: op.value, modRevision: revision });
      else this.committed.delete(op.key);
      const pending = this.pendingState.get(op.key);
      if (pending && pending.modRevision === revision) this.pendingState.delete(op.key);
    }
    this.committedRevision = revision;
    const event = { revision, ops };
    for (const listener of this.listeners) listener(event);
  }

  /**
   * Writes the committed state as a snapshot, starts a new segment chained from
   * it, then removes what the snapshot replaces. Runs between group commits, so
   * the committed state is exactly the state at committedRevision.
   */
  private async snapshot(): Promise<void> {
    this.stats.snapshots++;
    const revision = this.committedRevision;
    const chain = this.wal.hash;
    const body: SnapshotFile = { revision, chainHash: chain.toString('hex'), entries: [...this.committed] };
    await writeFileAtomic(join(this.options.dir, snapshotName(revision)), withChecksum(body));
    const previous = this.wal;
    this.wal = await WalWriter.create(join(this.options.dir, segmentName(revision + 1)), revision + 1, chain);
    await previous.close();
    await this.removeFilesBefore(revision);
  }

  private async removeFilesBefore(snapshotRevision: number): Promise<void> {
    for (const file of await readdir(this.options.dir)) {
      const isOldSnapshot = file.startsWith('snapshot-') && revisionOf(file) < snapshotRevision;
      const isOldSegment = file.startsWith('wal-') && revisionOf(file) <= snapshotRevision;
      if (isOldSnapshot || isOldSegment) await unlink(join(this.options.dir, file));
    }
  }

  private async recover(): Promise<void> {
    const { dir } = this.options;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const files = (await readdir(dir)).sort();
    const snapshots = files.filter((f) => /^snapshot-\d+\.json$/.test(f));
    const segments = files.filter((f) => /^wal-\d+\.log$/.test(f));

    let chain: Buffer = Buffer.alloc(32);
    let revision = 0;
    const latestSnapshot = snapshots.at(-1);
    if (latestSnapshot) {
      const snap = readChecked(join(dir, latestSnapshot), await readFile(join(dir, latestSnapshot), 'utf8'));
      for (const [key, stored] of snap.entries) this.committed.set(key, stored);
      revision = snap.revision;
      chain = Buffer.from(snap.chainHash, 'hex');
    }

    // Segments that start after the snapshot are replayed; older ones are leftovers of a snapshot interrupted by a crash.
    const live = segments.filter((f) => revisionOf(f) > revision);
    for (const [i, file] of live.entries()) {
      const path = join(dir, file);
      const isLast = i === live.length - 1;
      const segment = await readSegment(path, isLast);
      if (segment.tornBytes > 0) this.options.onTornTail?.(path, segment.tornBytes);
      if (segment.startRevision === -1) {
        await unlink(path); // crashed while creating it: empty
        continue;
      }
      if (!segment.seed.equals(chain)) throw new CorruptionError(path, 0, 'segment does not continue the previous segment or snapshot');
      for (const payload of segment.payloads) {
        const { revision: rev, ops } = decodeCommit(payload);
        if (rev <= revision) continue;
        this.apply(rev, ops);
        revision = rev;
      }
      chain = segment.lastHash;
      if (isLast) this.wal = await WalWriter.reopen(path, segment.validBytes, segment.lastHash);
    }
    this.committedRevision = revision;
    this.nextRevision = revision + 1;
    // A fresh directory, or one whose last segment was lost in creation: start a segment.
    this.wal ??= await WalWriter.create(join(dir, segmentName(revision + 1)), revision + 1, chain);
  }
}

function withChecksum(body: SnapshotFile): string {
  const json = JSON.stringify(body);
  const checksum = createHash('sha256').update(json).digest('hex');
  return JSON.stringify({ ...body, checksum });
}

function readChecked(path: string, text: string): SnapshotFile {
  let parsed: SnapshotFile;
  try {
    parsed = JSON.parse(text) as SnapshotFile;
  } catch {
    throw new CorruptionError(path, 0, 'snapshot is not valid JSON');
  }
  const { checksum, ...body } = parsed;
  const actual = createHash('sha256').update(JSON.stringify(body)).digest('hex');
  if (checksum !== actual) throw new CorruptionError(path, 0, 'snapshot fails its checksum');
  return body;
}
