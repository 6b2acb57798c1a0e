/**
 * The contract between the agent (which owns the secrets) and the per-container
 * FUSE filesystem (which only serves them). The mount never holds plaintext of
 * its own: it asks the source at open time and decrypts per read through the
 * OpenedVersion it was handed.
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
  /** Pins the current version for one open file handle. */
  open(): OpenedVersion;
}

/** What one container may see. Called on every lookup/open: keep it O(1). */
export interface SecretSource {
  list(): SecretFile[];
  lookup(name: string): SecretFile | undefined;
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
  /**
   * Upper bound on how long after the source changes a NEW open may still see
   * the old version. Becomes attr_timeout, entry_timeout and ac_attr_timeout.
   * Default 50 ms; the promise to users is 100 ms.
   */
  maxStalenessMs?: number;
  /** Default `auto`. */
  cache?: CacheMode;
  /** libfuse's `debug` option: traces every request on stderr (no file contents). */
  debug?: boolean;
}

/** Counters of requests that reached JavaScript, for metrics and the benchmark. */
export interface MountStats {
  getattr: number;
  readdir: number;
  open: number;
  read: number;
  release: number;
  /** Write-type requests refused by the handlers (the kernel refuses most first). */
  refused: number;
  /** Handler failures answered with EIO. */
  errors: number;
  /** Handles currently open. */
  openHandles: number;
}

export interface SecretsMount {
  readonly mountpoint: string;
  stats(): MountStats;
  /**
   * Detaches the mount (lazily if a reader still has a file open; that reader
   * keeps reading its pinned version until it closes). Idempotent.
   */
  unmount(): Promise<void>;
}
