/**
 * The embedded storage engine: the whole key space in memory, made durable by
 * the write-ahead log (group commit: every commit queued while a flush is in
 * flight shares the next fdatasync) and periodic snapshots that let old log
 * segments go.
 *
 * Files in the data directory:
 *   snapshot-<rev>.json   all keys as of <rev>, with the chain tag at <rev>, authenticated (see below)
 *   wal-<rev>.log         commits from <rev> on (see wal.ts)
 *
 * Every record and snapshot carries a tag keyed with a key derived from the
 * root key (log-auth.ts). The engine therefore opens in two steps: `peek`
 * reads the sealed keyring unverified (an autolocked store has no key before
 * it is unlocked, and the keyring is what unlocks it), then `authenticate`
 * verifies everything with the key; nothing is served before that.
 *
 * A snapshot is the JSON {format: 2, revision, chainHash, entries, mac}, mac =
 * keyed BLAKE2b-256 of the JSON without it. Format 1 (a plain SHA-256
 * `checksum`, no `format`) and "HUSHWAL1" segments are a data directory
 * written before the log was keyed: `authenticate` verifies it as well as
 * that format allows, writes its state as a keyed snapshot, and removes it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, CorruptionError, type KeyedBackend, type KvEntry, type KvEvent, type KvOp, type KvTxn, type PeekedValue } from './backend.js';
import { HushError } from '../errors/index.js';
import { writeFileAtomic } from '../files/index.js';
import { log } from '../log/index.js';
import { decodeCommit, encodeCommit } from './commit-codec.js';
import type { LogAuth } from './log-auth.js';
import { PrefixIndex } from './prefix-index.js';
import { readSegment, WalWriter, type RecoveredSegment } from './wal.js';

export interface EmbeddedOptions {
  dir: string;
  /** Take a snapshot (and start a new log segment) after this many log bytes. */
  snapshotAfterBytes?: number;
  /** Told about a torn tail cut off during recovery. */
  onTornTail?: (file: string, bytes: number) => void;
  /** Told when a data directory written before the log was keyed has been rewritten keyed. */
  onUpgrade?: (revision: number) => void;
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

interface SnapshotBody {
  revision: number;
  chainHash: string;
  entries: [string, StoredValue][];
}

interface ReadSnapshot extends SnapshotBody {
  format: 1 | 2;
}

interface ReadLiveSegment {
  path: string;
  isLast: boolean;
  segment: RecoveredSegment;
}

const pad = (n: number) => String(n).padStart(20, '0');
const segmentName = (rev: number) => `wal-${pad(rev)}.log`;
const snapshotName = (rev: number) => `snapshot-${pad(rev)}.json`;
const revisionOf = (file: string) => Number(file.replace(/^\D+-(\d+)\..*$/, '$1'));

export class EmbeddedBackend implements KeyedBackend {
  private readonly committed = new Map<string, StoredValue>();
  /** The committed keys by first segment, for list(): kept with `committed` by setCommitted/deleteCommitted. */
  private readonly prefixes = new PrefixIndex();
  /** Latest state of keys written by commits that are queued but not yet durable (null = deleted). */
  private readonly pendingState = new Map<string, { value: string | null; modRevision: number }>();
  private queue: Pending[] = [];
  private flushing = false;
  private failure: Error | undefined;
  private committedRevision = 0;
  private nextRevision = 1;
  private wal: WalWriter | undefined;
  private auth: LogAuth | undefined;
  private readonly listeners = new Set<(event: KvEvent) => void>();
  private readonly snapshotAfterBytes: number;
  /** Counters for metrics and tests: how well group commit is batching. */
  readonly stats = { commits: 0, flushes: 0, snapshots: 0 };

  private constructor(private readonly options: EmbeddedOptions) {
    this.snapshotAfterBytes = options.snapshotAfterBytes ?? 64 * 1024 * 1024;
  }

  /** An engine on a data directory that has read nothing yet: `peek`, then `authenticate`. */
  static at(options: EmbeddedOptions): EmbeddedBackend {
    return new EmbeddedBackend(options);
  }

  /** Both steps at once, for callers that hold the key from the start. */
  static async open(options: EmbeddedOptions & { auth: LogAuth; allowUnkeyed?: boolean }): Promise<EmbeddedBackend> {
    const backend = new EmbeddedBackend(options);
    await backend.authenticate(options.auth, { allowUnkeyed: options.allowUnkeyed ?? false });
    return backend;
  }

  get authenticated(): boolean {
    return this.wal !== undefined;
  }

  async peek(key: string): Promise<PeekedValue> {
    const { dir } = this.options;
    const { snapshots, segments } = await listFiles(dir);
    const found: PeekedValue = { hasData: false };
    let revision = 0;
    const latest = snapshots.at(-1);
    if (latest) {
      const path = join(dir, latest);
      const snap = parseSnapshot(path, await readFile(path, 'utf8'));
      revision = snap.revision;
      found.hasData = snap.entries.length > 0;
      const entry = snap.entries.find(([k]) => k === key);
      if (entry) Object.assign(found, { value: entry[1].value, file: path, offset: 0 });
    }
    const live = segments.filter((f) => revisionOf(f) > revision);
    for (const [i, file] of live.entries()) {
      const path = join(dir, file);
      const segment = await readSegment(path, i === live.length - 1, undefined);
      for (const [k, payload] of segment.payloads.entries()) {
        const { revision: rev, ops } = decode(path, segment.offsets[k], payload);
        if (rev <= revision) continue;
        found.hasData = true;
        for (const op of ops.filter((o) => o.key === key)) Object.assign(found, { value: op.type === 'put' ? op.value : undefined, file: path, offset: segment.offsets[k] });
      }
    }
    return found;
  }

  async authenticate(auth: LogAuth, options: { allowUnkeyed: boolean }): Promise<{ upgraded: boolean }> {
    if (this.wal) return { upgraded: false };
    try {
      return await this.recover(auth, options.allowUnkeyed);
    } catch (err) {
      // A refused attempt leaves nothing behind (the writer is opened last): the engine stays closed, and a later attempt starts over.
      this.committed.clear();
      this.prefixes.clear();
      this.committedRevision = 0;
      this.nextRevision = 1;
      throw err;
    }
  }

  async get(key: string): Promise<KvEntry | undefined> {
    this.assertAuthenticated();
    const stored = this.committed.get(key);
    return stored && { key, ...stored };
  }

  async list(prefix: string): Promise<KvEntry[]> {
    this.assertAuthenticated();
    const out: KvEntry[] = [];
    const candidates = this.prefixes.candidates(prefix);
    if (candidates === undefined) {
      for (const [key, stored] of this.committed) if (key.startsWith(prefix)) out.push({ key, ...stored });
    } else {
      for (const key of candidates) if (key.startsWith(prefix)) out.push({ key, ...this.committed.get(key)! });
    }
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
    this.assertAuthenticated();
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
    await this.wal?.close();
  }

  private assertAuthenticated(): void {
    if (!this.wal) throw new HushError('locked', 'the store is locked: its log is verified with the key before anything in it is served');
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
        const wal = this.wal!;
        try {
          // Framed here, not at enqueue: a snapshot between batches starts a new segment, and the chain must follow the segment.
          await wal.append(batch.map((p) => wal.frame(p.payload)));
        } catch (err) {
          // After a failed fsync the page cache cannot be trusted: stop taking writes.
          this.failure = new Error(`write-ahead log write failed (${(err as Error).message}); the store must be restarted`);
          for (const p of [...batch, ...this.queue]) p.reject(this.failure);
          this.queue = [];
          return;
        }
        this.stats.flushes++;
        this.stats.commits += batch.length;
        for (const p of batch) {
          this.apply(p.revision, p.ops);
          const event = { revision: p.revision, ops: p.ops };
          for (const listener of this.listeners) notify(listener, event);
        }
        for (const p of batch) p.resolve(p.revision);
        if (wal.bytes >= this.snapshotAfterBytes) await this.snapshot();
      }
    } finally {
      this.flushing = false;
    }
  }

  private setCommitted(key: string, stored: StoredValue): void {
    this.committed.set(key, stored);
    this.prefixes.add(key);
  }

  private deleteCommitted(key: string): void {
    this.committed.delete(key);
    this.prefixes.delete(key);
  }

  private apply(revision: number, ops: KvOp[]): void {
    for (const op of ops) {
      if (op.type === 'put') this.setCommitted(op.key, { value: op.value, modRevision: revision });
      else this.deleteCommitted(op.key);
      const pending = this.pendingState.get(op.key);
      if (pending && pending.modRevision === revision) this.pendingState.delete(op.key);
    }
    this.committedRevision = revision;
  }

  /**
   * Writes the committed state as a snapshot, starts a new segment chained from
   * it, then removes what the snapshot replaces. Runs between group commits, so
   * the committed state is exactly the state at committedRevision.
   */
  private async snapshot(): Promise<void> {
    this.stats.snapshots++;
    const revision = this.committedRevision;
    const previous = this.wal!;
    const chain = previous.hash;
    await this.writeSnapshot(revision, chain);
    this.wal = await WalWriter.create(join(this.options.dir, segmentName(revision + 1)), revision + 1, chain, this.auth!);
    await previous.close();
    await this.removeFilesBefore(revision);
  }

  private async writeSnapshot(revision: number, chain: Buffer): Promise<void> {
    const body = { format: 2, revision, chainHash: chain.toString('hex'), entries: [...this.committed] };
    const json = JSON.stringify(body);
    const mac = this.auth!.snapshot(Buffer.from(json)).toString('hex');
    await writeFileAtomic(join(this.options.dir, snapshotName(revision)), JSON.stringify({ ...body, mac }));
  }

  private async removeFilesBefore(snapshotRevision: number): Promise<void> {
    for (const file of await readdir(this.options.dir)) {
      const isOldSnapshot = file.startsWith('snapshot-') && revisionOf(file) < snapshotRevision;
      const isOldSegment = file.startsWith('wal-') && revisionOf(file) <= snapshotRevision;
      if (isOldSnapshot || isOldSegment) await unlink(join(this.options.dir, file));
    }
  }

  private async recover(auth: LogAuth, allowUnkeyed: boolean): Promise<{ upgraded: boolean }> {
    const { dir } = this.options;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const { snapshots, segments } = await listFiles(dir);

    let chain: Buffer = Buffer.alloc(32);
    let revision = 0;
    let unkeyedSnapshot: string | undefined;
    const latestSnapshot = snapshots.at(-1);
    if (latestSnapshot) {
      const path = join(dir, latestSnapshot);
      const snap = verifySnapshot(path, await readFile(path, 'utf8'), auth);
      if (snap.format === 1) unkeyedSnapshot = path;
      for (const [key, stored] of snap.entries) this.setCommitted(key, stored);
      revision = snap.revision;
      chain = Buffer.from(snap.chainHash, 'hex');
    }

    // Segments that start after the snapshot are replayed; older ones are leftovers of a snapshot interrupted by a crash.
    const live = segments.filter((f) => revisionOf(f) > revision);
    const read: ReadLiveSegment[] = [];
    for (const [i, file] of live.entries()) {
      const path = join(dir, file);
      read.push({ path, isLast: i === live.length - 1, segment: await readSegment(path, i === live.length - 1, auth) });
    }

    // An unkeyed data directory (written before the log was keyed) is upgraded only when the keyring allows it, and only whole.
    const unkeyedRecords = read.find((r) => r.segment.format === 1 && r.segment.payloads.length > 0);
    if (unkeyedRecords && latestSnapshot && !unkeyedSnapshot) {
      throw new CorruptionError(unkeyedRecords.path, unkeyedRecords.segment.offsets[0], 'unkeyed record after a keyed snapshot (written by someone without the key?)');
    }
    const unkeyed = unkeyedSnapshot ?? unkeyedRecords?.path;
    if (unkeyed) {
      if (!allowUnkeyed) {
        throw new CorruptionError(unkeyed, 0, 'file in the unkeyed format of before, but this store\'s keyring says its log is keyed (files replaced by someone without the key?)');
      }
      const keyed = read.find((r) => r.segment.format === 2 && r.segment.startRevision !== -1);
      if (keyed) throw new CorruptionError(keyed.path, 0, 'keyed segment after an unkeyed snapshot or segment (files mixed from two stores?)');
    }

    for (const { path, isLast, segment } of read) {
      if (segment.tornBytes > 0) this.options.onTornTail?.(path, segment.tornBytes);
      // Crashed while creating it, or (keyed) an unkeyed segment with no records, left by an interrupted upgrade: nothing in it.
      if (segment.startRevision === -1 || (!unkeyed && segment.format === 1)) {
        await unlink(path);
        continue;
      }
      if (!segment.seed.equals(chain)) throw new CorruptionError(path, 0, 'segment does not continue the previous segment or snapshot');
      for (const [k, payload] of segment.payloads.entries()) {
        const { revision: rev, ops } = decode(path, segment.offsets[k], payload);
        if (rev <= revision) continue;
        this.apply(rev, ops);
        revision = rev;
      }
      chain = segment.lastHash;
      if (isLast && !unkeyed) this.wal = await WalWriter.reopen(path, segment.validBytes, segment.lastHash, auth);
    }
    this.committedRevision = revision;
    this.nextRevision = revision + 1;
    this.auth = auth;
    if (unkeyed) {
      await this.upgrade(revision, chain, [...snapshots, ...segments]);
      return { upgraded: true };
    }
    // A fresh directory, or one whose last segment was lost in creation: start a segment.
    this.wal ??= await WalWriter.create(join(dir, segmentName(revision + 1)), revision + 1, chain, auth);
    return { upgraded: false };
  }

  /**
   * Rewrites a verified unkeyed directory keyed: its state as a keyed snapshot
   * (replacing an unkeyed one of the same revision atomically), then the
   * unkeyed files go, then a keyed segment starts. A crash before the snapshot
   * lands leaves the unkeyed directory to upgrade again; after it, the keyed
   * snapshot is the newest and any unkeyed leftover is either older than it
   * or an empty segment, which recovery removes.
   */
  private async upgrade(revision: number, chain: Buffer, unkeyedFiles: string[]): Promise<void> {
    const { dir } = this.options;
    await this.writeSnapshot(revision, chain);
    for (const file of unkeyedFiles) if (file !== snapshotName(revision)) await unlink(join(dir, file));
    this.wal = await WalWriter.create(join(dir, segmentName(revision + 1)), revision + 1, chain, this.auth!);
    this.options.onUpgrade?.(revision);
  }
}

async function listFiles(dir: string): Promise<{ snapshots: string[]; segments: string[] }> {
  let files: string[];
  try {
    files = (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { snapshots: [], segments: [] };
    throw err;
  }
  return { snapshots: files.filter((f) => /^snapshot-\d+\.json$/.test(f)), segments: files.filter((f) => /^wal-\d+\.log$/.test(f)) };
}

function decode(path: string, offset: number, payload: Buffer): { revision: number; ops: KvOp[] } {
  try {
    return decodeCommit(payload);
  } catch (err) {
    throw new CorruptionError(path, offset, `record does not decode (${(err as Error).message})`);
  }
}

/** Parses a snapshot without checking its tag: its shape only. */
function parseSnapshot(path: string, text: string): ReadSnapshot & { mac?: string; checksum?: string } {
  let parsed: ReadSnapshot & { mac?: unknown; checksum?: unknown };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new CorruptionError(path, 0, 'snapshot is not valid JSON');
  }
  const wellFormed =
    typeof parsed === 'object' && parsed !== null && Number.isSafeInteger(parsed.revision) && typeof parsed.chainHash === 'string' && /^[0-9a-f]{64}$/.test(parsed.chainHash) &&
    Array.isArray(parsed.entries) && parsed.entries.every((e) => Array.isArray(e) && typeof e[0] === 'string' && typeof e[1]?.value === 'string' && Number.isSafeInteger(e[1]?.modRevision));
  if (!wellFormed) throw new CorruptionError(path, 0, 'snapshot is not a hush snapshot');
  return parsed as ReadSnapshot & { mac?: string; checksum?: string };
}

/** Parses a snapshot and checks its tag: keyed (format 2), or the plain checksum of an unkeyed one (format 1, upgrade only). */
function verifySnapshot(path: string, text: string, auth: LogAuth): ReadSnapshot {
  const { mac, checksum, ...body } = parseSnapshot(path, text);
  const json = JSON.stringify(body);
  if (mac !== undefined) {
    const expected = auth.snapshot(Buffer.from(json));
    const given = Buffer.from(String(mac), 'hex');
    if (body.format !== 2 || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new CorruptionError(path, 0, 'snapshot fails its authentication (written without this store\'s key, or damaged)');
    }
    return body;
  }
  if (body.format !== undefined || checksum !== createHash('sha256').update(json).digest('hex')) throw new CorruptionError(path, 0, 'snapshot fails its checksum');
  return { ...body, format: 1 };
}

/**
 * Tells one watcher of a durable commit. Its failure is its own: the commit
 * stays durable and acknowledged, and the other watchers and the commits
 * after it are not held up (an exception here would leave them unresolved).
 */
function notify(listener: (event: KvEvent) => void, event: KvEvent): void {
  try {
    listener(event);
  } catch (err) {
    log.error({ revision: event.revision, err: (err as Error).message }, 'a watcher of the store failed on a commit');
  }
}
