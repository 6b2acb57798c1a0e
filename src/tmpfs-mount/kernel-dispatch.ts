/**
 * Answers one FUSE request: bytes in, bytes out, no I/O of its own. The
 * serving thread (kernel-worker.ts) reads a request from /dev/fuse, calls
 * `serveOne`, and the reply it writes is the only one for that request; unit
 * tests drive the same code with malformed and unexpected requests.
 *
 * Rules every path keeps:
 * - Each request gets exactly one reply, except FORGET, BATCH_FORGET,
 *   INTERRUPT and NOTIFY_REPLY, which the protocol says get none.
 * - Anything that throws is answered EIO and reported without a value.
 * - The bytes of a READ reply are zeroed as soon as the reply is written.
 */
import {
  ATTR_OUT_BYTES,
  decodeHeader,
  DIRENT_HEADER_BYTES,
  DT_DIR,
  DT_REG,
  ENTRY_OUT_BYTES,
  Errno,
  IN_HEADER_BYTES,
  INIT_OUT_BYTES,
  InitFlag,
  KERNEL_MAJOR,
  MIN_KERNEL_MINOR,
  NO_REPLY_OPS,
  Op,
  OPEN_OUT_BYTES,
  OpenFlag,
  opName,
  OUR_MINOR,
  OUT_HEADER_BYTES,
  readU64,
  ROOT_ID,
  S_IFDIR,
  splitTime,
  STATFS_OUT_BYTES,
  STATX_OUT_BYTES,
  WRITE_OPS,
  writeAttr,
  writeStatx,
  writeU64,
  type NodeAttr,
  type RequestHeader,
} from './fuse-abi.js';
import { Counter, type FromWorker, type KernelInit, type ViewUpdate, type WorkerNode } from './kernel-messages.js';
import { MAX_PAGES } from './kernel-options.js';
import { addLookup, forgetLookups, openRange, stateOf } from './shared-version.js';

/** Largest READ the kernel sends us. */
const MAX_READ_BYTES = MAX_PAGES * 4096;
/** Requests carry at most a name or a small struct (we take no writes: max_write is 4 KiB); the kernel wants ≥ 8 KiB. */
export const REQUEST_BUFFER_BYTES = 64 * 1024;
export const REPLY_BUFFER_BYTES = OUT_HEADER_BYTES + MAX_READ_BYTES;

const O_ACCMODE = 3;
const O_TRUNC = 0o1000;

interface HeldNode extends WorkerNode {
  state?: Int32Array;
}

/** A serving thread's copy of the view: names → current node, node id → node. */
export class NodeTable {
  readonly #names = new Map<string, number>();
  readonly #nodes = new Map<number, HeldNode>();
  /** Node ids some name points at. */
  readonly #current = new Set<number>();
  #sorted: string[] = [];

  apply(update: ViewUpdate): void {
    for (const node of update.add) this.#nodes.set(node.id, { ...node, state: node.shared && stateOf(node.shared) });
    for (const id of update.drop) this.#nodes.delete(id);
    if (update.names === undefined) return;
    this.#names.clear();
    this.#current.clear();
    for (const [name, id] of update.names) {
      // Keyed by the name's UTF-8 bytes read as latin1: a LOOKUP matches byte for byte.
      this.#names.set(Buffer.from(name).toString('latin1'), id);
      this.#current.add(id);
    }
    this.#sorted = [...this.#names.keys()].sort();
  }

  /** The current node of a name given as latin1-decoded bytes. */
  byName(nameBytes: string): HeldNode | undefined {
    const id = this.#names.get(nameBytes);
    return id === undefined ? undefined : this.#nodes.get(id);
  }

  get(id: number): HeldNode | undefined {
    return this.#nodes.get(id);
  }

  /** A node some name points at now (not a superseded version). */
  current(id: number): HeldNode | undefined {
    return this.#current.has(id) ? this.#nodes.get(id) : undefined;
  }

  /** [latin1 name, node id] in a stable order. */
  entries(): Array<[string, number]> {
    return this.#sorted.map((n) => [n, this.#names.get(n)!]);
  }

  get size(): number {
    return this.#names.size;
  }
}

export interface DispatchOptions {
  key: Uint8Array;
  /**
   * Int32 shared by the threads of one connection: 0 before INIT, else
   * INIT_NO_OPEN or INIT_OPENS. Only one thread reads the INIT; the others
   * learn from this (the kernel sends nothing else before the INIT reply).
   */
  connection: Int32Array;
  rootMtimeMs: number;
  entryTimeoutMs: number;
  attrTimeoutMs: number;
  noOpen: boolean;
  /**
   * Names that start with this (latin1; random per mount, known only to the
   * agent) are the agent's own lookups of a node by id, made so that it can
   * fill the node's page cache (kernel-prefill.ts): never listed, never
   * recorded as an access.
   */
  prefillPrefix: string;
}

const INIT_NO_OPEN = 1;
const INIT_OPENS = 2;

/** Per-thread state of one connection. */
export class Dispatcher {
  readonly table = new NodeTable();
  /** Set by DESTROY: the thread stops after answering it. */
  destroyed = false;
  readonly #reported = new Set<number>();
  /** Nodes the current request made droppable (a BATCH_FORGET may carry many): one event for all. */
  #dropped: number[] = [];
  readonly #root: NodeAttr;
  readonly #entry: [number, number];
  readonly #attr: [number, number];

  constructor(
    private readonly opts: DispatchOptions,
    private readonly counters: BigInt64Array,
    private readonly emit: (event: FromWorker) => void,
    /** Updates the main thread posted since the last call (checked before every request). */
    private readonly pending: () => ViewUpdate[] = () => [],
  ) {
    this.#root = { ino: ROOT_ID, size: 0, mode: S_IFDIR | 0o555, nlink: 2, uid: 0, gid: 0, mtimeMs: opts.rootMtimeMs };
    this.#entry = splitTime(opts.entryTimeoutMs);
    this.#attr = splitTime(opts.attrTimeoutMs);
  }

  /**
   * Handles the request in `req[0, length)`, writes the reply into `out` and
   * returns its length (0: no reply). Never throws.
   */
  dispatch(req: Buffer, length: number, out: Buffer): number {
    this.sync();
    const h = decodeHeader(req, length);
    if (h === undefined) {
      // Too short to carry a header (the kernel never does this): answer EIO if the unique arrived.
      this.#problem('warn', 'short', 0, `request of ${length} bytes`);
      return length >= OUT_HEADER_BYTES ? this.#error(out, req.readBigUInt64LE(8), Errno.EIO) : 0;
    }
    if (h.opcode < 64) Atomics.add(this.counters, h.opcode, 1n);
    const noReply = NO_REPLY_OPS.has(h.opcode);
    if (h.len !== length || h.extBytes > length - IN_HEADER_BYTES) {
      this.#problem('warn', opName(h.opcode), h.nodeid, `header says ${h.len} bytes (${h.extBytes} of extensions), ${length} arrived`);
      return noReply ? 0 : this.#error(out, h.unique, Errno.EIO);
    }
    try {
      const n = this.#handle(h, req.subarray(IN_HEADER_BYTES, length - h.extBytes), out);
      return noReply ? 0 : n;
    } catch (err) {
      Atomics.add(this.counters, Counter.ERRORS, 1n);
      this.#problem('error', opName(h.opcode), h.nodeid, (err as Error).message);
      return noReply ? 0 : this.#error(out, h.unique, Errno.EIO);
    } finally {
      if (this.#dropped.length > 0) this.emit({ kind: 'dropped', nodes: this.#dropped.splice(0) });
    }
  }

  get initialized(): boolean {
    return Atomics.load(this.opts.connection, 0) !== 0;
  }

  get #noOpen(): boolean {
    return Atomics.load(this.opts.connection, 0) === INIT_NO_OPEN;
  }

  /** Applies what the main thread posted. */
  sync(): void {
    for (const update of this.pending()) this.table.apply(update);
  }

  #handle(h: RequestHeader, body: Buffer, out: Buffer): number {
    if (h.opcode === Op.INIT) return this.#init(h, body, out);
    if (!this.initialized) {
      this.#problem('warn', opName(h.opcode), h.nodeid, 'request before INIT');
      return this.#error(out, h.unique, Errno.EIO);
    }
    if (WRITE_OPS.has(h.opcode)) {
      Atomics.add(this.counters, Counter.REFUSED, 1n);
      return this.#error(out, h.unique, Errno.EROFS);
    }
    switch (h.opcode) {
      case Op.LOOKUP:
        return this.#lookup(h, body, out);
      case Op.FORGET:
        need(body, 8, 'forget');
        this.#forget(h.nodeid, readU64(body, 0));
        return 0;
      case Op.BATCH_FORGET:
        return this.#batchForget(body);
      case Op.GETATTR:
        return this.#getattr(h, out);
      case Op.STATX:
        return this.#statx(h, out);
      case Op.READ:
        return this.#read(h, body, out);
      case Op.READDIR:
        return this.#readdir(h, body, out);
      case Op.OPEN:
        return this.#open(h, body, out);
      case Op.OPENDIR:
        // No OPENDIR support needed: with NO_OPENDIR_SUPPORT, ENOSYS makes the kernel stop asking.
        if (this.#noOpen) return this.#error(out, h.unique, Errno.ENOSYS);
        if (h.nodeid !== ROOT_ID) return this.#error(out, h.unique, Errno.ENOTDIR);
        out.fill(0, OUT_HEADER_BYTES, OUT_HEADER_BYTES + OPEN_OUT_BYTES);
        return this.#ok(out, h.unique, OPEN_OUT_BYTES);
      case Op.RELEASE:
      case Op.RELEASEDIR:
        return this.#ok(out, h.unique, 0);
      case Op.STATFS:
        return this.#statfs(h, out);
      case Op.INTERRUPT:
        // Every request is answered as soon as it is read: there is never one to interrupt.
        return 0;
      case Op.NOTIFY_REPLY:
        return 0;
      case Op.DESTROY:
        this.destroyed = true;
        return this.#ok(out, h.unique, 0);
      case Op.READLINK:
        return this.#error(out, h.unique, Errno.EINVAL);
      default:
        // FLUSH (so closes stop reaching us), FSYNC, xattrs, ACCESS, locks, LSEEK,
        // READDIRPLUS (never negotiated), and opcodes newer than this code.
        return this.#error(out, h.unique, Errno.ENOSYS);
    }
  }

  #init(h: RequestHeader, body: Buffer, out: Buffer): number {
    if (this.initialized) {
      this.#problem('warn', 'init', 0, 'a second INIT');
      return this.#error(out, h.unique, Errno.EPROTO);
    }
    need(body, 16, 'init');
    const flags = body.readUInt32LE(12);
    const kernel: KernelInit = {
      major: body.readUInt32LE(0),
      minor: body.readUInt32LE(4),
      maxReadahead: body.readUInt32LE(8),
      flags,
      flags2: (flags & InitFlag.INIT_EXT) !== 0 && body.length >= 20 ? body.readUInt32LE(16) : 0,
    };
    const n = negotiate(kernel, this.opts.noOpen);
    if (n.refused !== null) {
      this.emit({ kind: 'init', kernel, refused: n.refused, noOpen: false, minor: 0 });
      return this.#error(out, h.unique, Errno.EPROTO);
    }
    // Before the reply: the kernel sends the other threads nothing until it has it.
    Atomics.store(this.opts.connection, 0, n.noOpen ? INIT_NO_OPEN : INIT_OPENS);
    const o = OUT_HEADER_BYTES;
    out.fill(0, o, o + INIT_OUT_BYTES);
    out.writeUInt32LE(KERNEL_MAJOR, o);
    out.writeUInt32LE(n.minor, o + 4);
    out.writeUInt32LE(kernel.maxReadahead, o + 8); // the kernel's own
    out.writeUInt32LE(n.flags >>> 0, o + 12);
    out.writeUInt32LE(4096, o + 20); // max_write: the kernel's minimum; nothing is ever written
    out.writeUInt32LE(1, o + 24); // time_gran: nanoseconds
    out.writeUInt16LE(MAX_PAGES, o + 28);
    this.emit({ kind: 'init', kernel, refused: null, noOpen: n.noOpen, minor: n.minor });
    return this.#ok(out, h.unique, INIT_OUT_BYTES);
  }

  #lookup(h: RequestHeader, body: Buffer, out: Buffer): number {
    if (h.nodeid !== ROOT_ID) return this.#error(out, h.unique, this.table.get(h.nodeid) ? Errno.ENOTDIR : Errno.ENOENT);
    const end = body.indexOf(0);
    const name = body.toString('latin1', 0, end < 0 ? body.length : end);
    const prefill = name.startsWith(this.opts.prefillPrefix);
    const find = (): HeldNode | undefined => (prefill ? this.#prefillNode(name) : this.table.byName(name));
    let node = find();
    // Dropped between the main thread's update and our drain: take the update and look again.
    while (node?.state && !addLookup(node.state)) {
      this.sync();
      node = find();
    }
    if (node === undefined) return this.#error(out, h.unique, Errno.ENOENT);
    if (!node.shared) {
      Atomics.add(this.counters, Counter.ERRORS, 1n);
      this.#problem('error', 'lookup', node.id, 'this version could not be read when it was published');
      return this.#error(out, h.unique, Errno.EIO);
    }
    if (!prefill && !this.#reported.has(node.id)) {
      this.#reported.add(node.id);
      this.emit({ kind: 'lookup', node: node.id, pid: h.pid, uid: h.uid, gid: h.gid, at: Date.now() });
    }
    const o = OUT_HEADER_BYTES;
    writeU64(out, o, node.id);
    writeU64(out, o + 8, 0); // generation: node ids are never reused within a mount
    writeU64(out, o + 16, this.#entry[0]);
    writeU64(out, o + 24, this.#attr[0]);
    out.writeUInt32LE(this.#entry[1], o + 32);
    out.writeUInt32LE(this.#attr[1], o + 36);
    writeAttr(out, o + 40, node.attr);
    return this.#ok(out, h.unique, ENTRY_OUT_BYTES);
  }

  /**
   * The node a prefill name points at: the agent's lookup by id, of current
   * versions only (the prefill name of a superseded one is being dropped
   * from the kernel and must not come back).
   */
  #prefillNode(name: string): HeldNode | undefined {
    const id = name.slice(this.opts.prefillPrefix.length);
    return /^[1-9][0-9]{0,14}$/.test(id) ? this.table.current(Number(id)) : undefined;
  }

  #forget(id: number, n: number): void {
    const node = this.table.get(id);
    if (!node?.state) return;
    if (forgetLookups(node.state, n)) this.#dropped.push(id);
    this.#reported.delete(id);
  }

  #batchForget(body: Buffer): number {
    need(body, 8, 'batch_forget');
    const count = body.readUInt32LE(0);
    // Only the entries that really arrived: a count larger than the body is not trusted.
    const fits = Math.min(count, Math.floor((body.length - 8) / 16));
    for (let i = 0; i < fits; i++) this.#forget(readU64(body, 8 + i * 16), readU64(body, 8 + i * 16 + 8));
    if (fits < count) this.#problem('warn', 'batch_forget', 0, `count ${count}, only ${fits} entries present`);
    return 0;
  }

  #attrOf(id: number): NodeAttr | undefined {
    if (id === ROOT_ID) return this.#root;
    return this.table.get(id)?.attr;
  }

  #getattr(h: RequestHeader, out: Buffer): number {
    const attr = this.#attrOf(h.nodeid);
    if (!attr) return this.#stale(h, out);
    const o = OUT_HEADER_BYTES;
    writeU64(out, o, this.#attr[0]);
    out.writeUInt32LE(this.#attr[1], o + 8);
    out.writeUInt32LE(0, o + 12);
    writeAttr(out, o + 16, attr);
    return this.#ok(out, h.unique, ATTR_OUT_BYTES);
  }

  #statx(h: RequestHeader, out: Buffer): number {
    const attr = this.#attrOf(h.nodeid);
    if (!attr) return this.#stale(h, out);
    const o = OUT_HEADER_BYTES;
    out.fill(0, o, o + 32);
    writeU64(out, o, this.#attr[0]);
    out.writeUInt32LE(this.#attr[1], o + 8);
    writeStatx(out, o + 32, attr);
    return this.#ok(out, h.unique, STATX_OUT_BYTES);
  }

  #read(h: RequestHeader, body: Buffer, out: Buffer): number {
    need(body, 24, 'read');
    if (h.nodeid === ROOT_ID) return this.#error(out, h.unique, Errno.EISDIR);
    const node = this.table.get(h.nodeid);
    if (!node) return this.#stale(h, out);
    if (!node.shared) return this.#error(out, h.unique, Errno.EIO);
    const offset = readU64(body, 8);
    const size = Math.min(body.readUInt32LE(16), out.length - OUT_HEADER_BYTES);
    const n = openRange(this.opts.key, node.id, node.shared, node.attr.size, offset, size, out, OUT_HEADER_BYTES);
    return this.#ok(out, h.unique, n);
  }

  #readdir(h: RequestHeader, body: Buffer, out: Buffer): number {
    need(body, 24, 'readdir');
    if (h.nodeid !== ROOT_ID) return this.#error(out, h.unique, this.table.get(h.nodeid) ? Errno.ENOTDIR : Errno.ESTALE);
    const start = readU64(body, 8);
    const max = Math.min(body.readUInt32LE(16), out.length - OUT_HEADER_BYTES);
    const entries: Array<[string, number, number]> = [
      ['.', ROOT_ID, DT_DIR],
      ['..', ROOT_ID, DT_DIR],
      ...this.table.entries().map(([name, id]): [string, number, number] => [name, id, DT_REG]),
    ];
    let at = OUT_HEADER_BYTES;
    for (let i = start; i < entries.length; i++) {
      const [name, ino, type] = entries[i]!;
      const nameLength = Buffer.byteLength(name, 'latin1');
      const record = (DIRENT_HEADER_BYTES + nameLength + 7) & ~7;
      if (at - OUT_HEADER_BYTES + record > max) break;
      out.fill(0, at, at + record);
      writeU64(out, at, ino);
      writeU64(out, at + 8, i + 1); // the offset of the next entry
      out.writeUInt32LE(nameLength, at + 16);
      out.writeUInt32LE(type, at + 20);
      out.write(name, at + DIRENT_HEADER_BYTES, 'latin1');
      at += record;
    }
    return this.#ok(out, h.unique, at - OUT_HEADER_BYTES);
  }

  /** Only reached when the kernel has no FUSE_NO_OPEN_SUPPORT (or it was turned off). */
  #open(h: RequestHeader, body: Buffer, out: Buffer): number {
    if (this.#noOpen) return this.#error(out, h.unique, Errno.ENOSYS);
    need(body, 8, 'open');
    const flags = body.readUInt32LE(0);
    if ((flags & O_ACCMODE) !== 0 || (flags & O_TRUNC) !== 0) {
      Atomics.add(this.counters, Counter.REFUSED, 1n);
      return this.#error(out, h.unique, Errno.EROFS);
    }
    const node = this.table.get(h.nodeid);
    if (!node) return this.#stale(h, out);
    const o = OUT_HEADER_BYTES;
    out.fill(0, o, o + OPEN_OUT_BYTES);
    // A node's bytes never change, so its pages stay valid across opens.
    out.writeUInt32LE(OpenFlag.KEEP_CACHE, o + 8);
    return this.#ok(out, h.unique, OPEN_OUT_BYTES);
  }

  #statfs(h: RequestHeader, out: Buffer): number {
    const o = OUT_HEADER_BYTES;
    out.fill(0, o, o + STATFS_OUT_BYTES);
    writeU64(out, o + 24, this.table.size + 1); // files
    out.writeUInt32LE(4096, o + 40); // bsize
    out.writeUInt32LE(255, o + 44); // namelen
    out.writeUInt32LE(4096, o + 48); // frsize
    return this.#ok(out, h.unique, STATFS_OUT_BYTES);
  }

  #stale(h: RequestHeader, out: Buffer): number {
    Atomics.add(this.counters, Counter.STALE, 1n);
    this.#problem('warn', opName(h.opcode), h.nodeid, 'a node id this mount does not hold (dropped, or never handed out)');
    return this.#error(out, h.unique, Errno.ESTALE);
  }

  #ok(out: Buffer, unique: bigint, bodyLength: number): number {
    const length = OUT_HEADER_BYTES + bodyLength;
    out.writeUInt32LE(length, 0);
    out.writeInt32LE(0, 4);
    out.writeBigUInt64LE(unique, 8);
    return length;
  }

  #error(out: Buffer, unique: bigint, errno: number): number {
    out.writeUInt32LE(OUT_HEADER_BYTES, 0);
    out.writeInt32LE(-errno, 4);
    out.writeBigUInt64LE(unique, 8);
    return OUT_HEADER_BYTES;
  }

  #problem(level: 'error' | 'warn', op: string, node: number, message: string): void {
    this.emit({ kind: 'problem', level, op, node, message });
  }
}

export interface Negotiated {
  refused: string | null;
  minor: number;
  flags: number;
  noOpen: boolean;
}

/**
 * What we answer to the kernel's INIT. We ask only for what the read path
 * uses; we never ask for READDIRPLUS (its entries would be lookups the
 * kernel makes without a caller, see docs/architecture.md).
 */
export function negotiate(kernel: KernelInit, wantNoOpen: boolean): Negotiated {
  if (kernel.major !== KERNEL_MAJOR) {
    return { refused: `the kernel speaks FUSE protocol ${kernel.major}.${kernel.minor}; hush speaks ${KERNEL_MAJOR}.x`, minor: 0, flags: 0, noOpen: false };
  }
  if (kernel.minor < MIN_KERNEL_MINOR) {
    return {
      refused: `the kernel's FUSE protocol 7.${kernel.minor} is older than 7.${MIN_KERNEL_MINOR} (Linux 5.2), which hush needs; use --fuse native`,
      minor: 0,
      flags: 0,
      noOpen: false,
    };
  }
  const want =
    InitFlag.ASYNC_READ | InitFlag.PARALLEL_DIROPS | InitFlag.MAX_PAGES | InitFlag.NO_OPEN_SUPPORT | InitFlag.NO_OPENDIR_SUPPORT | InitFlag.INIT_EXT;
  const flags = (kernel.flags & want) >>> 0;
  return {
    refused: null,
    minor: Math.min(kernel.minor, OUR_MINOR),
    flags,
    noOpen: wantNoOpen && (flags & InitFlag.NO_OPEN_SUPPORT) !== 0 && (flags & InitFlag.NO_OPENDIR_SUPPORT) !== 0,
  };
}

function need(body: Buffer, bytes: number, what: string): void {
  if (body.length < bytes) throw new Error(`${what} request body of ${body.length} bytes, ${bytes} expected`);
}

/** The two ends of /dev/fuse a serving thread uses; tests pass their own. */
export interface FuseIo {
  /** One request into `buf`; its length. Throws an errno error as fs.readSync does. */
  read(buf: Buffer): number;
  write(buf: Buffer, length: number): void;
}

/**
 * Reads one request, answers it, and zeroes what the reply carried of a
 * secret. Returns false when the connection is gone (the thread should stop).
 */
export function serveOne(d: Dispatcher, io: FuseIo, req: Buffer, out: Buffer): boolean {
  let length: number;
  try {
    length = io.read(req);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EINTR' || code === 'EAGAIN') return true;
    if (code === 'ENODEV' || code === 'ECONNABORTED') return false; // unmounted, or the connection was aborted
    throw err;
  }
  const replyLength = d.dispatch(req, length, out);
  try {
    if (replyLength > 0) io.write(out, replyLength);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENOENT: the request was interrupted or aborted meanwhile; nobody waits for the reply.
    if (code === 'ENODEV' || code === 'ECONNABORTED') return false;
    if (code !== 'ENOENT') throw err;
  } finally {
    // The reply of a READ held plaintext; the request buffer never does.
    if (replyLength > OUT_HEADER_BYTES) out.fill(0, OUT_HEADER_BYTES, replyLength);
  }
  return !d.destroyed;
}
