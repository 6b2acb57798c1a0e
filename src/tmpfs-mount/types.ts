/**
 * The contract between the agent (which owns the secrets) and the per-container
 * FUSE filesystem (which only serves them). Two implementations sit behind it:
 *
 * - `kernel` (default): the FUSE kernel protocol spoken on /dev/fuse by this
 *   process, one node id per secret version, opens kept in the kernel
 *   (no_open), page cache kept. The mount reads a version once, when it
 *   becomes visible, and keeps it sealed under a key of its own until the
 *   kernel forgets the version's node (kernel-session.ts).
 * - `native`: fuse-native (libfuse 2), the fallback: one node per name,
 *   direct_io, the version pinned at open and decrypted per read.
 *
 * Neither keeps plaintext beyond the request that needed it.
 */

/** One version of one secret, pinned by an open file handle. */
export interface OpenedVersion {
  /** Byte length of this version's plaintext. */
  readonly size: number;
  /**
   * Decrypts `length` bytes from `position` (clamped to `size`) into a fresh
   * buffer. The mount copies it to the kernel and then zeroes it, so the
   * returned buffer must not be shared.
   */
  read(position: number, length: number): Buffer;
}

/** A file as the container sees it: the grant's target, owner and mode. */
export interface SecretFile {
  /** The target file name: one path component, no '/'. */
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** Permission bits only, e.g. 0o444; the file type is added by the mount. */
  readonly mode: number;
  /**
   * The version's time. It MUST differ (at millisecond resolution) between two
   * versions of the same file: the kernel keeps cached pages across opens and
   * drops them only when mtime or size changes, so two versions with the same
   * size and the same mtime would let a reader see the old bytes.
   */
  readonly mtime: Date;
  readonly size: number;
  /**
   * Which bytes these are: the secret's name and version (never its value).
   * A new value of the file comes with a new (source, version); the kernel
   * implementation gives each its own node and records lookups by them.
   */
  readonly source: string;
  readonly version: number;
  /** Pins the current version for one open file handle. */
  open(): OpenedVersion;
}

/** What one container may see. Called on every lookup/open: keep it O(1). */
export interface SecretSource {
  list(): SecretFile[];
  lookup(name: string): SecretFile | undefined;
  /**
   * Calls `listener` (synchronously) after each change of what list() and
   * lookup() return; returns the way to stop. The kernel implementation
   * tells the kernel at once (its caches have long timeouts); the native one
   * relies on its short ones.
   */
  onChange(listener: () => void): () => void;
}

export type FuseImplementation = 'kernel' | 'native';

/** The first lookup of one version of one file in one mount, and when the kernel released it. */
export interface LookupRecord {
  /** The file name in the mount (the grant's target). */
  file: string;
  /** The secret's name and version. */
  secret: string;
  version: number;
  /** The first LOOKUP of this version's node: when, and the caller as the kernel named it (pid in the agent's pid namespace). */
  firstLookup: { at: string; pid: number; uid: number; gid: number };
  /** When the kernel forgot this version's node (no dentry, no open file left), once it was no longer current; null until then. */
  releasedAt: string | null;
}

/**
 * `auto`: the kernel keeps page cache across opens and drops it when a new
 * version's mtime/size shows up (fast; see options.ts for the one caveat).
 * `off`: `direct_io`, every read reaches the agent and is served from the
 * version its handle opened (strict per-handle isolation, ~2-3x slower).
 * The default is 'off' (see options.ts).
 */
export type CacheMode = 'auto' | 'off';

export interface MountOptions {
  /** Default `kernel`. */
  implementation?: FuseImplementation;
  /** kernel: serving threads (default in kernel-options.ts). */
  threads?: number;
  /**
   * kernel: keep opens in the kernel (FUSE no_open) when it offers that.
   * Default true; false makes opens reach the agent (each answered with
   * keep_cache), as on a kernel without no_open: for tests and the bench.
   */
  noOpen?: boolean;
  /**
   * kernel: fill a new version into the page cache when the container looked
   * up the one it replaces (kernel-prefill.ts). Default true; false for the
   * bench's comparison.
   */
  prefill?: boolean;
  /**
   * native: upper bound on how long after the source changes a NEW open may still see
   * the old version. Becomes attr_timeout, entry_timeout and ac_attr_timeout.
   * Default 50 ms; the promise to users is 100 ms.
   */
  maxStalenessMs?: number;
  /** native: default `off`. */
  cache?: CacheMode;
  /** native: libfuse's `debug` option: traces every request on stderr (no file contents). */
  debug?: boolean;
}

/** Counters of requests that reached the agent, for metrics and the benchmark. */
export interface MountStats {
  /** Every request that reached the agent (native: the ones below). */
  requests: number;
  /** kernel only (native: 0; libfuse answers lookups through getattr). */
  lookup: number;
  /** GETATTR and STATX. */
  getattr: number;
  readdir: number;
  open: number;
  read: number;
  release: number;
  /** kernel: FORGET and BATCH_FORGET requests. */
  forget: number;
  /** Write-type requests refused by the handlers (the kernel refuses most first). */
  refused: number;
  /** Handler failures answered with EIO. */
  errors: number;
  /** kernel: requests for a node id the mount no longer holds (answered ESTALE). */
  stale: number;
  /** kernel: old versions still held because the kernel still references their nodes (an open file, say). */
  retained: number;
  /** Handles currently open (native; the kernel implementation has none: no_open). */
  openHandles: number;
}

export interface SecretsMount {
  readonly mountpoint: string;
  readonly implementation: FuseImplementation;
  stats(): MountStats;
  /** kernel: first lookups and releases per version (oldest first); native: null, it cannot see them. */
  lookups(): LookupRecord[] | null;
  /**
   * Resolves once the background work the changes so far started is done
   * (kernel: filling new versions into the page cache; native: none).
   */
  settled(): Promise<void>;
  /**
   * Detaches the mount (lazily if a reader still has a file open; that reader
   * keeps reading its pinned version until it closes). Idempotent.
   */
  unmount(): Promise<void>;
}
