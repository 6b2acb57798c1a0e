/**
 * The main thread's side of a kernel-protocol mount: which node id each name
 * points at, the nodes (versions) still alive, and what to tell the serving
 * threads and the kernel when the source changes.
 *
 * One node per (file, version, owner, mode): a node's bytes and attributes
 * never change, so the kernel may keep its pages for as long as it holds the
 * node. A change makes a new node, re-points the name (to the serving threads
 * first, then to the kernel with FUSE_NOTIFY_INVAL_ENTRY), and retires the old
 * node, which lives on until the kernel forgets it (shared-version.ts). Where
 * the container had looked up the old node, the new one is then filled into
 * the page cache (kernel-prefill.ts).
 */
import { invalEntryNotification, invalInodeNotification, ROOT_ID, S_IFREG } from './fuse-abi.js';
import type { ViewUpdate, WorkerNode } from './kernel-messages.js';
import { MAX_RETAINED_BYTES, MAX_RETAINED_VERSIONS, RETENTION_GRACE_MS } from './kernel-options.js';
import { Prefiller } from './kernel-prefill.js';
import { LookupLog } from './lookup-log.js';
import { forceDrop, MountKey, stateOf, supersede } from './shared-version.js';
import type { SecretFile, SecretSource } from './types.js';

interface LiveNode {
  id: number;
  name: string;
  source: string;
  version: number;
  size: number;
  /** What makes two files the same node: every field the kernel sees. */
  identity: string;
  shared?: SharedArrayBuffer;
}

export interface ViewPorts {
  /** Hands an update to every serving thread (they take it before their next request). */
  post(update: ViewUpdate): void;
  /** Writes a notification to the kernel; returns the errno code if it refused it. */
  notify(message: Buffer): string | null;
  /** Brings `lookups` up to date with what the serving threads saw. */
  collectLookups(): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

const identityOf = (f: SecretFile): string => JSON.stringify([f.source, f.version, f.size, f.mtime.getTime(), f.uid, f.gid, f.mode & 0o777]);

export class MountView {
  readonly lookups = new LookupLog();
  readonly #current = new Map<string, LiveNode>();
  readonly #nodes = new Map<number, LiveNode>();
  /** Superseded nodes the kernel still holds, oldest first. */
  readonly #retained = new Map<number, LiveNode>();
  #retainedBytes = 0;
  #nextId = ROOT_ID + 1;
  #boundCheck: NodeJS.Timeout | undefined;
  /** Nodes the kernel forgot, reported one message each: handed on in one update per turn of the event loop. */
  #forgotten: number[] = [];
  #flush: NodeJS.Immediate | undefined;
  /** Current versions whose prefill name the kernel may hold (kernel-prefill.ts). */
  readonly #prefilled = new Set<number>();
  /** Current versions a container looked up (the audit log keeps only the latest records; this keeps every current one). */
  readonly #lookedUp = new Set<number>();

  /** Fills new versions into the page cache; absent when the mount was made without. */
  readonly #prefiller: Prefiller | undefined;

  constructor(
    private readonly source: SecretSource,
    private readonly key: MountKey,
    private readonly ports: ViewPorts,
    /** Where the mount is and its prefill names' prefix (kernel-prefill.ts); undefined: no fills. */
    prefill?: { mountpoint: string; prefix: string },
  ) {
    this.#prefiller =
      prefill && new Prefiller(prefill.mountpoint, prefill.prefix, { open: (id) => this.#plaintextOf(id), notify: (m) => ports.notify(m), warn: (f, m) => ports.warn(f, m) });
  }

  /** The first view, before any serving thread runs. */
  initial(): ViewUpdate {
    const add: WorkerNode[] = [];
    for (const file of this.source.list()) {
      const node = this.#create(file);
      this.#current.set(node.name, node);
      add.push(this.#forWorker(node, file));
    }
    return { kind: 'update', names: this.#names(), add, drop: [] };
  }

  /**
   * Brings threads and kernel up to date with the source. Synchronous: when it
   * returns, an open that starts afterwards resolves the name to the new
   * version (or to nothing).
   */
  refresh(files: SecretFile[] = this.source.list()): void {
    const seen = new Set<string>();
    const add: WorkerNode[] = [];
    const retire: LiveNode[] = [];
    const changed: string[] = [];
    const fill: number[] = [];
    if (this.#prefiller) this.ports.collectLookups();
    for (const file of files) {
      seen.add(file.name);
      const old = this.#current.get(file.name);
      if (old && old.identity === identityOf(file)) continue;
      const node = this.#create(file);
      this.#current.set(file.name, node);
      add.push(this.#forWorker(node, file));
      if (old) retire.push(old);
      // The container looked up the version this one replaces: it reads this file, so it gets the new bytes cached.
      if (old && node.shared && this.#lookedUp.has(old.id)) fill.push(node.id);
      changed.push(file.name);
    }
    let namesChanged = add.length > retire.length;
    for (const [name, node] of this.#current) {
      if (seen.has(name)) continue;
      this.#current.delete(name);
      retire.push(node);
      changed.push(name);
      namesChanged = true;
    }
    if (changed.length === 0) return;
    // 1. Threads first: from now on a LOOKUP answers the new node (or ENOENT).
    this.ports.post({ kind: 'update', names: this.#names(), add, drop: [] });
    // 2. Retire the old nodes; those the kernel no longer holds go at once.
    const drop = retire.filter((node) => this.#retire(node));
    if (drop.length > 0) this.#drop(drop.map((n) => n.id));
    this.#scheduleBoundCheck();
    // 3. The kernel: forget the cached name, so the next open looks it up again.
    for (const name of changed) this.#notify(invalEntryNotification(ROOT_ID, name), name);
    for (const node of retire) this.#lookedUp.delete(node.id);
    // Retired versions that were filled: their prefill names go too (in the background), or the kernel would hold them until memory runs short.
    const filled = retire.filter((node) => this.#prefilled.delete(node.id));
    if (filled.length > 0) this.#prefiller?.release(filled.map((node) => node.id));
    // A changed set of names also drops the directory's cached listing.
    if (namesChanged) this.#notify(invalInodeNotification(ROOT_ID), '.');
    if (this.#prefiller && fill.length > 0) {
      for (const id of fill) this.#prefilled.add(id);
      this.#prefiller.fill(fill);
    }
  }

  /** Resolves once the fills the changes so far started are done. */
  async settled(): Promise<void> {
    await this.#prefiller?.idle();
  }

  /** The plaintext of a current version, for its fill (the caller zeroes it); undefined once superseded. */
  #plaintextOf(id: number): Buffer | undefined {
    const node = this.#nodes.get(id);
    if (!node?.shared || this.#current.get(node.name) !== node) return undefined;
    return this.key.open(id, node.shared, node.size);
  }

  /** Every name goes (the mount is being taken down): new lookups find nothing. */
  clear(): void {
    this.#prefiller?.stop();
    this.refresh([]);
  }

  /** Stops the timer of the retention check (the mount is gone from the main thread's view). */
  dispose(): void {
    clearTimeout(this.#boundCheck);
    // What the kernel forgot is handed on now: the threads may serve a lazily unmounted mount for a while.
    if (this.#flush !== undefined) {
      clearImmediate(this.#flush);
      this.#flush = undefined;
      this.#drop(this.#forgotten.splice(0));
    }
  }

  /** A serving thread saw the kernel forget a retired node. */
  dropped(id: number): void {
    this.lookups.released(id);
    this.#forgotten.push(id);
    this.#flush ??= setImmediate(() => {
      this.#flush = undefined;
      this.#drop(this.#forgotten.splice(0));
    });
  }

  /** A serving thread answered the first lookup of `id`. */
  lookedUp(id: number, caller: { pid: number; uid: number; gid: number; at: number }): void {
    this.lookups.lookup(id, caller);
    const node = this.#nodes.get(id);
    if (node && this.#current.get(node.name) === node) this.#lookedUp.add(id);
  }

  /** Versions held: current ones and retired ones the kernel still references. */
  get size(): { current: number; retained: number; retainedBytes: number } {
    return { current: this.#current.size, retained: this.#retained.size, retainedBytes: this.#retainedBytes };
  }

  #create(file: SecretFile): LiveNode {
    const id = this.#nextId++;
    const node: LiveNode = { id, name: file.name, source: file.source, version: file.version, size: file.size, identity: identityOf(file) };
    try {
      const opened = file.open();
      const plaintext = opened.read(0, opened.size);
      try {
        node.size = plaintext.length;
        node.shared = this.key.seal(id, plaintext);
      } finally {
        plaintext.fill(0);
      }
    } catch (err) {
      // The name stays, answering EIO, so the failure shows where the file is read, not as a missing file.
      this.ports.warn({ file: file.name, secret: file.source, version: file.version, error: (err as Error).message }, 'secrets mount: a version could not be read; its lookups answer EIO');
    }
    this.#nodes.set(id, node);
    this.lookups.created(id, node);
    return node;
  }

  #forWorker(node: LiveNode, file: SecretFile): WorkerNode {
    return {
      id: node.id,
      attr: { ino: node.id, size: node.size, mode: S_IFREG | (file.mode & 0o777), nlink: 1, uid: file.uid, gid: file.gid, mtimeMs: file.mtime.getTime() },
      shared: node.shared,
    };
  }

  #names(): Array<[string, number]> {
    return [...this.#current].map(([name, node]) => [name, node.id]);
  }

  /** True when the node can go now (the kernel holds no lookup of it). */
  #retire(node: LiveNode): boolean {
    if (!node.shared) return true;
    if (supersede(stateOf(node.shared))) {
      // Looked up and forgotten while still current: its release is now.
      this.lookups.released(node.id);
      return true;
    }
    this.#retained.set(node.id, node);
    this.#retainedBytes += node.size;
    return false;
  }

  /**
   * Over the bound right after a refresh is normal: the kernel forgets the
   * old nodes only once the notifications have dropped their names (FORGETs
   * arrive within milliseconds). So the bound is checked a little later, and
   * only what is then still retained counts.
   */
  #scheduleBoundCheck(): void {
    if (this.#boundCheck !== undefined || (this.#retained.size <= MAX_RETAINED_VERSIONS && this.#retainedBytes <= MAX_RETAINED_BYTES)) return;
    this.#boundCheck = setTimeout(() => {
      this.#boundCheck = undefined;
      this.#enforceBound();
    }, RETENTION_GRACE_MS);
    this.#boundCheck.unref();
  }

  #enforceBound(): void {
    const forced: LiveNode[] = [];
    for (const node of [...this.#retained.values()]) {
      if (this.#retained.size <= MAX_RETAINED_VERSIONS && this.#retainedBytes <= MAX_RETAINED_BYTES) break;
      this.#retained.delete(node.id);
      this.#retainedBytes -= node.size;
      if (forceDrop(stateOf(node.shared!))) forced.push(node);
    }
    if (forced.length === 0) return;
    const versions = forced.slice(0, 10).map((n) => `${n.name} (${n.source} v${n.version})`);
    this.ports.warn({ dropped: forced.length, versions }, 'secrets mount: dropped old versions the kernel still holds (open files pin too many); their uncached reads answer ESTALE');
    this.#drop(forced.map((n) => n.id));
  }

  #drop(ids: number[]): void {
    for (const id of ids) {
      const node = this.#nodes.get(id);
      if (!node) continue;
      this.#nodes.delete(id);
      if (this.#retained.delete(id)) this.#retainedBytes -= node.size;
    }
    this.ports.post({ kind: 'update', add: [], drop: ids });
  }

  #notify(message: Buffer, name: string): void {
    const refused = this.ports.notify(message);
    // ENOENT: the kernel had nothing cached under that name; nothing to forget.
    if (refused !== null && refused !== 'ENOENT') this.ports.warn({ file: name, error: refused }, 'secrets mount: the kernel refused a notification');
  }
}
