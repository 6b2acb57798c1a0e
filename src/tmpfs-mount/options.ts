/**
 * The libfuse mount options, and why.
 *
 * Every request that reaches JavaScript costs two thread hand-offs (libfuse
 * thread -> Node event loop -> back), 20-50 us of agent CPU on the 2-core test
 * machines (docs/performance.md, bench/fuse-read.ts). So the question is how
 * few requests an open+read+close can cost while a NEW open still sees a new
 * version within 100 ms. Measured per 1 KiB open+read+close (JS requests):
 *
 *   defaults (no page cache kept)    open, read, release      ~ 3 requests
 *   direct_io                        + one more read for EOF  ~ 4
 *   kernel_cache / auto_cache        open, release            ~ 2
 *
 * `kernel_cache` is unsafe here: libfuse 2.9 does not ask the kernel for
 * FUSE_AUTO_INVAL_DATA, so cached pages survive a same-size new version
 * forever (fuse-native has no call to invalidate them). `auto_cache` makes
 * libfuse compare mtime/size at open (at most once per ac_attr_timeout) and
 * drop the pages when they changed: as fast as kernel_cache in our runs, and
 * correct as long as each version has its own mtime (see SecretFile.mtime).
 *
 * The staleness bound is the largest of three timeouts, all set to
 * `maxStalenessMs`: entry_timeout (the kernel's name cache), attr_timeout
 * (the kernel's i_size, which caps how much of a grown file a read returns)
 * and ac_attr_timeout (libfuse's mtime check). At 50 ms each one costs a
 * getattr per file per 50 ms at most: ~60 requests/s against ~20,000 reads/s.
 * negative_timeout stays 0, so a newly granted name shows up at once.
 *
 * Caveat of any page cache (auto_cache included): pages belong to the inode,
 * not to the handle. A handle opened on version 1 that has not read yet, or
 * is part-way through a file larger than one read request (128 KiB), gets
 * version 2's pages if ANOTHER open reads version 2 first. Reads that reach
 * the agent always come from the handle's own version. `cache: 'off'`
 * (direct_io) gives strict per-handle isolation at about 2-3x the cost.
 *
 * The default is therefore 'off': the contract is that an open file keeps
 * the version it opened and content is never torn, and only direct_io keeps
 * that when another process reads a new version meanwhile (fuse-native can
 * neither set direct_io per open nor invalidate the kernel's pages). 'auto'
 * stays available for measurements and for callers that accept the caveat.
 */
import type { CacheMode } from './types.js';

export const DEFAULT_MAX_STALENESS_MS = 50;

export interface OptionInput {
  maxStalenessMs: number;
  cache: CacheMode;
  debug: boolean;
}

/** The comma-separated list handed to libfuse after `-o`. */
export function fuseOptionList(input: OptionInput): string[] {
  if (!Number.isFinite(input.maxStalenessMs) || input.maxStalenessMs < 0) {
    throw new RangeError('maxStalenessMs must be a finite number >= 0');
  }
  const seconds = String(input.maxStalenessMs / 1000);
  const list = [
    // The kernel refuses writes (EROFS) before any request reaches us.
    'ro',
    // Containers run as other users; without it only the mounting user (root) gets in.
    'allow_other',
    // fuse-native's handlers never learn the caller's uid, so the kernel must
    // enforce each file's uid/gid/mode.
    'default_permissions',
    'fsname=hush',
    'subtype=hush',
    `entry_timeout=${seconds}`,
    `attr_timeout=${seconds}`,
  ];
  if (input.cache === 'auto') list.push('auto_cache', `ac_attr_timeout=${seconds}`);
  else list.push('direct_io');
  if (input.debug) list.push('debug');
  return list;
}
