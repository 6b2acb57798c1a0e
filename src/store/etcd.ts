/**
 * The etcd backend: the store's key space under one key prefix of an etcd
 * cluster, so that several store replicas share it (etcd is the replicated,
 * durable part; a replica keeps nothing of its own but its key file).
 *
 * The mapping is direct: a commit is one etcd transaction (conditions become
 * compares on mod_revision; 0 compares equal for an absent key, as etcd
 * compares a missing key against a zero key-value), revisions are etcd's
 * cluster revision (so an acknowledged revision means the same on every
 * replica), and `watch` is one etcd watch on the prefix, from the revision
 * the backend was authenticated at, fanned out here.
 *
 * etcd holds only what the embedded engine writes to disk: records whose
 * secrets are sealed already. Each value is stored framed with a tag keyed by
 * the log key's value subkey (log-auth.ts) and bound to its key:
 *
 *   byte 0     format (1)
 *   bytes 1-32 keyed BLAKE2b-256(len(key) ‖ key ‖ value), key without the prefix
 *   bytes 33-  the value (UTF-8)
 *
 * Beside the linearizable reads (a range through etcd's leader), the backend
 * keeps the copy of the prefix the watch keeps current (`watchedReads`):
 * reads from it cost no round trip, and see at least every commit this
 * replica made and every event its watch delivered, in revision order. The
 * dispatcher reads through it (a sync starts from a watch event, so the copy
 * holds that event already); admin reads stay linearizable, so a write
 * through one replica is visible through every other at once.
 *
 * Every read and watch event is checked against the tag: a value written or
 * edited by someone with etcd access but without the store's key, or moved
 * from another key, is refused loudly (an error naming the key, and a log
 * line). What the tags cannot show (docs/security.md, "Store on etcd"): a
 * key deleted by such a writer (a delete has no value to tag), and an older
 * value of the same key written back (it carries a valid tag); etcd's own
 * authentication and RBAC must keep writers out, as the file system's
 * permissions do for the embedded engine's dropped tail.
 */
import { timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import type { CallOptions } from '@grpc/grpc-js';
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen } from 'cockatiel';
import type { Etcd3, IKeyValue, IOptions, IRequestOp, ITxnResponse, IWatchResponse, Watcher } from 'etcd3';
import { HushError } from '../errors/index.js';
import { log } from '../log/index.js';
import { ConflictError, type Backend, type KeyedBackend, type KvEntry, type KvEvent, type KvOp, type KvTxn, type PeekedValue } from './backend.js';
import type { LogAuth } from './log-auth.js';

/**
 * The etcd client, loaded when a store first uses etcd: it brings its own
 * copy of gRPC, 16 MiB resident, which a store on the embedded engine (the
 * default) would carry for nothing (store RSS goal, bench/propagation.ts).
 */
const loadEtcd3 = (): typeof import('etcd3') => createRequire(import.meta.url)('etcd3') as typeof import('etcd3');

export interface EtcdTls {
  /** CA that signed the etcd members' certificates (PEM). */
  ca?: Buffer;
  /** Client certificate and key, when etcd asks for one (PEM). */
  cert?: Buffer;
  key?: Buffer;
}

export interface EtcdOptions {
  /** Client URLs of the members, e.g. http://10.0.0.1:2379. */
  endpoints: string[];
  /** Every key lives under this prefix (default `hush/`), so one etcd can hold other data, or several stores. */
  prefix?: string;
  tls?: EtcdTls;
  /** How long one request may take before it fails as unavailable (default 5000 ms: etcd's own election takes ~1 s). */
  requestTimeoutMs?: number;
}

export const DEFAULT_ETCD_PREFIX = 'hush/';
const FRAME_FORMAT = 1;
const TAG_BYTES = 32;
const PAGE = 500;

interface Listener {
  listener: (event: KvEvent) => void;
  /** The backend's revision when it subscribed: it is told about later commits only. */
  after: number;
}

/** The end of the key range holding every key that starts with `prefix` (etcd's range_end). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  // All 0xff: to the end of the key space.
  return Buffer.from([0]);
}

type WatchBackoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

export class EtcdBackend implements KeyedBackend {
  readonly prefix: string;
  private readonly client: Etcd3;
  private auth: LogAuth | undefined;
  private latest = 0;
  private watcher: Watcher | undefined;
  private readonly listeners = new Set<Listener>();
  private readonly timeoutMs: number;
  private closed = false;
  /** Every key under the prefix as of `copyRevision`: read at authenticate, then kept current by the watch. */
  private readonly copy = new Map<string, KvEntry>();
  private copyRevision = 0;
  /** The newest revision this replica committed: reads from the copy wait until the watch has delivered it. */
  private ownRevision = 0;
  /** Reads from the copy waiting for the watch to reach a revision. */
  private readonly copyWaiters = new Set<{ revision: number; done: () => void }>();

  private constructor(options: EtcdOptions) {
    if (options.endpoints.length === 0) throw new HushError('bad_request', 'no etcd endpoint given');
    const prefix = options.prefix ?? DEFAULT_ETCD_PREFIX;
    if (prefix === '' || prefix === '/') throw new HushError('bad_request', 'the etcd prefix must not be empty (it is where this store\'s keys live, e.g. hush/)');
    this.prefix = prefix.endsWith('/') ? prefix : `${prefix}/`;
    this.timeoutMs = options.requestTimeoutMs ?? 5000;
    const { Etcd3: Client, isRecoverableError } = loadEtcd3();
    const clientOptions: IOptions = {
      hosts: options.endpoints,
      // Values of 256 KiB and pages of 500 of them: above grpc-js's 4 MiB default.
      grpcOptions: { 'grpc.max_receive_message_length': 256 * 1024 * 1024 },
      // Every unary call has a deadline, the client's own too (election, leases). Without one, a call that
      // a member without quorum holds becomes the circuit breaker's half-open trial, and every later call
      // to that member waits behind it: seen as a replica that stopped pushing to its agents after etcd
      // lost and regained its majority. Streams (watch, keep-alive) live on.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + this.timeoutMs }),
      faultHandling: {
        // The client's default, but a member is tried again after 1 s instead of 5 once it failed three times in a row.
        host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
        // The default reconnects a lost watch after up to 30 s; pushes to agents wait on the watch, so 2 s at most.
        // (The client's own default is this factory too; its option type names what the factory's next() returns.)
        watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 }) as unknown as WatchBackoff,
      },
    };
    if (options.tls?.ca) clientOptions.credentials = { rootCertificate: options.tls.ca, privateKey: options.tls.key, certChain: options.tls.cert };
    this.client = new Client(clientOptions);
  }

  /** A backend connected to etcd that has read nothing yet: `peek`, then `authenticate`. */
  static at(options: EtcdOptions): EtcdBackend {
    return new EtcdBackend(options);
  }

  /** Both steps at once, for callers that hold the key from the start. */
  static async open(options: EtcdOptions & { auth: LogAuth }): Promise<EtcdBackend> {
    const backend = new EtcdBackend(options);
    try {
      await backend.authenticate(options.auth);
    } catch (err) {
      await backend.close();
      throw err;
    }
    return backend;
  }

  get authenticated(): boolean {
    return this.auth !== undefined;
  }

  /** Where a key lives in etcd, for messages. */
  describe(key: string): string {
    return `etcd key ${this.prefix}${key}`;
  }

  async peek(key: string): Promise<PeekedValue> {
    const res = await this.call((o) => this.client.kv.range({ key: this.full(key) }, o));
    const count = await this.call((o) => this.client.kv.range({ key: this.full(''), range_end: prefixEnd(this.full('')), count_only: true }, o));
    const kv = res.kvs[0];
    const found: PeekedValue = { hasData: Number(count.count) > 0 };
    if (kv) Object.assign(found, { value: unframe(kv.value)?.value.toString('utf8'), file: this.describe(key), offset: Number(kv.mod_revision) });
    return found;
  }

  /**
   * Verifies every value under the prefix with the key and starts serving
   * (and watching) from the revision it read them at. There is no unkeyed
   * format to upgrade: etcd storage was keyed from its first write.
   */
  async authenticate(auth: LogAuth): Promise<{ upgraded: boolean }> {
    if (this.auth) return { upgraded: false };
    const { entries, revision } = await this.readRange('', auth);
    this.auth = auth;
    this.latest = Math.max(this.latest, revision);
    this.replaceCopy(entries, revision);
    this.startWatch(revision + 1);
    return { upgraded: false };
  }

  async get(key: string): Promise<KvEntry | undefined> {
    const auth = this.assertAuthenticated();
    const res = await this.call((o) => this.client.kv.range({ key: this.full(key) }, o));
    this.saw(Number(res.header.revision));
    const kv = res.kvs[0];
    return kv && this.verified(kv, auth);
  }

  async list(prefix: string): Promise<KvEntry[]> {
    const auth = this.assertAuthenticated();
    const { entries, revision } = await this.readRange(prefix, auth);
    this.saw(revision);
    return entries;
  }

  revision(): number {
    return this.latest;
  }

  watch(listener: (event: KvEvent) => void): () => void {
    const entry = { listener, after: this.latest };
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  async commit(txn: KvTxn): Promise<number> {
    const auth = this.assertAuthenticated();
    const conditions = txn.conditions ?? [];
    const compare = conditions.map((c) => ({ key: this.full(c.key), target: 'Mod' as const, result: 'Equal' as const, mod_revision: c.modRevision }));
    const success: IRequestOp[] = dedupe(txn.ops).map((op) =>
      op.type === 'put'
        ? { request_put: { key: this.full(op.key), value: frame(auth, op.key, op.value) } }
        : { request_delete_range: { key: this.full(op.key) } },
    );
    // On failure the same transaction reads the conditioned keys, at the revision the compares saw: etcd does not say which compare failed.
    const failure: IRequestOp[] = conditions.map((c) => ({ request_range: { key: this.full(c.key), keys_only: true } }));
    const res: ITxnResponse = await this.call((o) => this.client.kv.txn({ compare, success, failure }, o));
    const revision = Number(res.header.revision);
    this.saw(revision);
    if (!res.succeeded) throw new ConflictError(failingCondition(conditions, res));
    if (revision > this.ownRevision) this.ownRevision = revision;
    return revision;
  }

  /**
   * The same storage, read from the copy the watch keeps current: no round
   * trip to etcd per read. A read waits until the copy holds this replica's
   * own latest commit (read-your-writes); a commit made through another
   * replica is seen once this replica's watch delivers it, as its listeners
   * are told. Writes and watches are the backend's own.
   */
  watchedReads(): Backend {
    return {
      get: async (key) => {
        this.assertAuthenticated();
        await this.copyCaughtUp();
        return this.copy.get(key);
      },
      list: async (prefix) => {
        this.assertAuthenticated();
        await this.copyCaughtUp();
        const out: KvEntry[] = [];
        for (const [key, entry] of this.copy) if (key.startsWith(prefix)) out.push(entry);
        return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      },
      commit: (txn) => this.commit(txn),
      // What a read through it now sees at least: the copy, or this replica's own later commit it waits for.
      revision: () => Math.max(this.copyRevision, this.ownRevision),
      watch: (listener) => this.watch(listener),
      close: () => this.close(),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    for (const waiter of this.copyWaiters) waiter.done();
    this.copyWaiters.clear();
    await this.watcher?.cancel().catch(() => undefined);
    this.client.close();
  }

  /** For the election (and tools) that need etcd beyond the key-value interface. */
  get etcd(): Etcd3 {
    return this.client;
  }

  private full(key: string): Buffer {
    return Buffer.from(this.prefix + key, 'utf8');
  }

  private assertAuthenticated(): LogAuth {
    if (this.closed) throw new HushError('unavailable', 'the store\'s etcd connection is closed');
    if (!this.auth) throw new HushError('locked', 'the store is locked: what etcd holds is verified with the key before anything in it is served');
    return this.auth;
  }

  private saw(revision: number): void {
    if (revision > this.latest) this.latest = revision;
  }

  /** A stored key-value, verified: the entry, or a loud refusal naming the key. */
  private verified(kv: IKeyValue, auth: LogAuth): KvEntry {
    const key = kv.key.toString('utf8').slice(this.prefix.length);
    const framed = unframe(kv.value);
    if (!framed || !tagsEqual(framed.tag, auth.value(key, framed.value))) {
      const message = `${this.describe(key)} fails its authentication (written by someone without this store's key, moved from another key, or damaged): refusing to serve it`;
      log.error({ key: this.prefix + key, modRevision: Number(kv.mod_revision) }, message);
      throw new HushError('internal', message);
    }
    return { key, value: framed.value.toString('utf8'), modRevision: Number(kv.mod_revision) };
  }

  /** Every key under `prefix`, verified, in key order, read in pages at one revision. */
  private async readRange(prefix: string, auth: LogAuth): Promise<{ entries: KvEntry[]; revision: number }> {
    const end = prefixEnd(this.full(prefix));
    const entries: KvEntry[] = [];
    let start = this.full(prefix);
    let revision = 0;
    for (;;) {
      const res = await this.call((o) => this.client.kv.range({ key: start, range_end: end, limit: PAGE, revision: revision || undefined }, o));
      if (revision === 0) revision = Number(res.header.revision);
      for (const kv of res.kvs) entries.push(this.verified(kv, auth));
      if (!res.more || res.kvs.length === 0) break;
      start = Buffer.concat([res.kvs.at(-1)!.key, Buffer.from([0])]);
    }
    return { entries, revision };
  }

  /** One request with a deadline; etcd's failures become `unavailable` (503) with etcd's reason. */
  private async call<T>(request: (options: CallOptions) => Promise<T>): Promise<T> {
    try {
      return await request({ deadline: Date.now() + this.timeoutMs });
    } catch (err) {
      if (err instanceof ConflictError || err instanceof HushError) throw err;
      throw new HushError('unavailable', `etcd did not complete the request (${(err as Error).message}); is a majority of its members up?`);
    }
  }

  private startWatch(fromRevision: number): void {
    if (this.closed) return;
    const watcher = this.client.watch().prefix(this.full('')).startRevision(String(fromRevision)).watcher();
    this.watcher = watcher;
    watcher.on('data', (res: IWatchResponse) => this.onWatch(res));
    watcher.on('disconnected', (err: Error) => log.warn({ err: err.message }, 'lost the etcd watch; reconnecting (it resumes where it stopped)'));
    watcher.on('connected', () => log.debug({ from: this.latest + 1 }, 'etcd watch established'));
    watcher.on('error', (err: Error) => {
      // Cancelled by etcd (a compaction past where the watch stood): watch again from now, and tell listeners everything as it is.
      log.error({ err: err.message }, 'etcd cancelled the watch; re-reading the whole store');
      void this.resync();
    });
  }

  private async resync(): Promise<void> {
    await this.watcher?.cancel().catch(() => undefined);
    if (this.closed || !this.auth) return;
    try {
      const { entries, revision } = await this.readRange('', this.auth);
      this.saw(revision);
      // Deletes during the lost stretch are unknown: the copy is replaced whole, then listeners hear every key.
      this.replaceCopy(entries, revision);
      this.publish({ revision, ops: entries.map((e) => ({ type: 'put', key: e.key, value: e.value })) });
      this.startWatch(revision + 1);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'could not re-read the store after losing the etcd watch; retrying in 1 s');
      setTimeout(() => void this.resync(), 1000).unref();
    }
  }

  private replaceCopy(entries: KvEntry[], revision: number): void {
    this.copy.clear();
    for (const entry of entries) this.copy.set(entry.key, entry);
    this.copyRevision = Math.max(this.copyRevision, revision);
    this.wakeCopyWaiters();
  }

  private applyToCopy(event: KvEvent): void {
    // A re-read after a lost watch replaced the copy already (with each key's own modRevision).
    if (event.revision <= this.copyRevision) return;
    for (const op of event.ops) {
      if (op.type === 'delete') this.copy.delete(op.key);
      else this.copy.set(op.key, { key: op.key, value: op.value, modRevision: event.revision });
    }
    if (event.revision > this.copyRevision) this.copyRevision = event.revision;
    this.wakeCopyWaiters();
  }

  private wakeCopyWaiters(): void {
    for (const waiter of this.copyWaiters) if (waiter.revision <= this.copyRevision) waiter.done();
  }

  /**
   * Resolves once the copy holds this replica's latest commit. The watch
   * delivers it within milliseconds; while the watch is lost (it reconnects
   * within 2 s) the read waits, as long as a request may take, and then
   * fails as unavailable like a read that etcd did not answer.
   */
  private copyCaughtUp(): Promise<void> {
    const revision = this.ownRevision;
    if (revision <= this.copyRevision) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.copyWaiters.delete(waiter);
        reject(new HushError('unavailable', `the etcd watch has not delivered revision ${revision} within ${this.timeoutMs} ms; is a majority of etcd's members up?`));
      }, this.timeoutMs);
      const waiter = {
        revision,
        done: () => {
          clearTimeout(timer);
          this.copyWaiters.delete(waiter);
          resolve();
        },
      };
      this.copyWaiters.add(waiter);
    });
  }

  /** A watch response: its events grouped by revision (a transaction's events share one, in the order of its operations). */
  private onWatch(res: IWatchResponse): void {
    if (!res.events?.length || !this.auth) return;
    log.debug({ events: res.events.length, revision: Number(res.header.revision) }, 'etcd watch events');
    let current: KvEvent | undefined;
    const flush = () => {
      if (current) this.publish(current);
      current = undefined;
    };
    for (const event of res.events) {
      const revision = Number(event.kv.mod_revision);
      if (current && current.revision !== revision) flush();
      current ??= { revision, ops: [] };
      const key = event.kv.key.toString('utf8').slice(this.prefix.length);
      if (event.type === 'Delete') {
        current.ops.push({ type: 'delete', key });
        continue;
      }
      try {
        current.ops.push({ type: 'put', key, value: this.verified(event.kv, this.auth).value });
      } catch {
        // Refused and logged by verified(); the listeners re-read the key and are refused again.
        current.ops.push({ type: 'delete', key });
      }
    }
    flush();
  }

  private publish(event: KvEvent): void {
    this.saw(event.revision);
    // The copy first: a listener that reads (the dispatcher's sync) reads what it was told about.
    this.applyToCopy(event);
    for (const entry of [...this.listeners]) {
      if (event.revision <= entry.after || !this.listeners.has(entry)) continue;
      try {
        entry.listener(event);
      } catch (err) {
        log.error({ revision: event.revision, err: (err as Error).message }, 'a watcher of the store failed on a commit');
      }
    }
  }
}

function frame(auth: LogAuth, key: string, value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  return Buffer.concat([Buffer.from([FRAME_FORMAT]), auth.value(key, bytes), bytes]);
}

function unframe(stored: Buffer): { tag: Buffer; value: Buffer } | undefined {
  if (stored.length < 1 + TAG_BYTES || stored[0] !== FRAME_FORMAT) return undefined;
  return { tag: stored.subarray(1, 1 + TAG_BYTES), value: stored.subarray(1 + TAG_BYTES) };
}

function tagsEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** etcd refuses a transaction that names a key twice; the last operation on a key is the one that counts. */
function dedupe(ops: KvOp[]): KvOp[] {
  const last = new Map<string, KvOp>();
  for (const op of ops) {
    last.delete(op.key);
    last.set(op.key, op);
  }
  return last.size === ops.length ? ops : [...last.values()];
}

/** The first condition that the failed transaction's reads (its failure branch, one range per condition) show does not hold. */
function failingCondition(conditions: { key: string; modRevision: number }[], res: ITxnResponse): string {
  for (const [i, condition] of conditions.entries()) {
    const kv = res.responses[i]?.response_range?.kvs[0];
    const actual = kv ? Number(kv.mod_revision) : 0;
    if (actual !== condition.modRevision) return condition.key;
  }
  // The compares failed but the reads say they hold: impossible in one etcd transaction; name the first.
  return conditions[0]?.key ?? '';
}
