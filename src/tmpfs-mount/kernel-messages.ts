/**
 * What the main thread and the serving threads of one kernel-protocol mount
 * tell each other. Main → serving: the view (names → node ids, new nodes,
 * dropped nodes), on a MessagePort each thread drains synchronously before it
 * handles a request. Serving → main: events the main thread logs or records
 * (postMessage; the serving thread never waits for an answer).
 */
import type { MessagePort } from 'node:worker_threads';
import type { NodeAttr } from './fuse-abi.js';

/** One version of one file, as a serving thread needs it. */
export interface WorkerNode {
  id: number;
  attr: NodeAttr;
  /** Sealed bytes and the lookup state (shared-version.ts); absent when the version could not be read (LOOKUP answers EIO). */
  shared?: SharedArrayBuffer;
}

export interface ViewUpdate {
  kind: 'update';
  /** The whole directory: name → node id of its current version; absent when the names did not change. */
  names?: Array<[string, number]>;
  add: WorkerNode[];
  drop: number[];
}

export type ToWorker = ViewUpdate;

export interface KernelInit {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  flags2: number;
}

export interface InitEvent {
  kind: 'init';
  kernel: KernelInit;
  /** Null when we accepted the kernel; otherwise why not (the INIT was answered with an error). */
  refused: string | null;
  /** Whether opens stay in the kernel (FUSE_NO_OPEN_SUPPORT offered and wanted). */
  noOpen: boolean;
  minor: number;
}

/**
 * The first LOOKUP of a node this serving thread answered, with its caller.
 * The serving thread writes it into its lookup ring (lookup-ring.ts) and
 * posts it only when the ring is full.
 */
export interface LookupEvent {
  kind: 'lookup';
  node: number;
  pid: number;
  uid: number;
  gid: number;
  at: number;
}

/** The thread's lookup ring is half full: collect it. */
export interface LookupsWaitingEvent {
  kind: 'lookups';
}

/** The kernel forgot superseded nodes (one request's worth): their bytes go from every thread once main says so. */
export interface DroppedEvent {
  kind: 'dropped';
  nodes: number[];
}

/** A request that failed inside the thread (answered EIO) or a request we could not parse. Never carries a value. */
export interface ProblemEvent {
  kind: 'problem';
  level: 'error' | 'warn';
  op: string;
  node: number;
  message: string;
}

/** The thread stopped serving: the connection is gone (unmounted, aborted) or reading it failed. */
export interface StoppedEvent {
  kind: 'stopped';
  reason: string;
}

export type FromWorker = InitEvent | LookupEvent | LookupsWaitingEvent | DroppedEvent | ProblemEvent | StoppedEvent;

/** Per-opcode request counters shared by all threads of a mount, plus these extra slots. */
export const Counter = {
  /** Answered EIO: the thread failed, or the version was dropped before the kernel let go of it. */
  ERRORS: 64,
  /** Answered EROFS. */
  REFUSED: 65,
  /** A request for a node id this mount does not hold. */
  STALE: 66,
  SLOTS: 67,
} as const;

/** connection[1]: a serving thread reads /dev/fuse only once it is attached (before that, read(2) fails with EPERM). */
export const MOUNTED = 1;
export const ABANDONED = -1;

export interface WorkerData {
  fd: number;
  /** The mount's key (a copy per thread, wiped when it stops). */
  key: Uint8Array;
  port: MessagePort;
  /** Int32: bumped by main after each post to `port`, so a thread drains only when something came. */
  generation: SharedArrayBuffer;
  /** Int32 × 2: the connection's INIT state (kernel-dispatch.ts), then whether mount(8) attached the fd (MOUNTED, ABANDONED). */
  connection: SharedArrayBuffer;
  /** BigInt64 × Counter.SLOTS. */
  counters: SharedArrayBuffer;
  /** This thread's lookup ring (lookup-ring.ts). */
  lookups: SharedArrayBuffer;
  rootMtimeMs: number;
  entryTimeoutMs: number;
  attrTimeoutMs: number;
  /** Names the agent looks nodes up by to fill their page cache (kernel-dispatch.ts). */
  prefillPrefix: string;
  /** false: treat the kernel as if it lacked FUSE_NO_OPEN_SUPPORT (opens reach us; tests and the bench). */
  noOpen: boolean;
  /** The first update, applied before the first request. */
  initial: ViewUpdate;
}
