/**
 * The tunables of the kernel-protocol mount, and why each has its value.
 * Figures: these 2-vCPU VMs, Linux 6.18, bench/fuse-read.ts and the
 * measurement spike in ../shared/notes/fuse-kernel-protocol.md.
 *
 * Timeouts. A version's node never changes (new bytes = new node), and a name
 * is re-pointed by FUSE_NOTIFY_INVAL_ENTRY the moment it changes, so the
 * kernel may cache names and attributes as long as it likes: the timeouts
 * are not what makes a rotation visible. They bound the damage should a
 * notification ever be refused (we log it): then a name would stay on its old
 * version for at most ENTRY_TIMEOUT_MS. Each expiry costs one LOOKUP per
 * cached name: at 60 s that is 1 request per 60 s per file, against ~500k
 * cached reads/s with one reader (0 requests per read in the bench).
 *
 * Serving threads. Each blocks in read(2) on /dev/fuse. Only page-cache misses
 * (the first read of a version), lookups and forgets reach them, so they
 * matter for the first read of a new version, never for cached reads. The
 * spike measured 1 vs 2 vs 4 threads answering every request (opens reaching
 * userspace): 5.6k, 26.6k, fewer reads/s: waking a thread that sleeps on the
 * other vCPU costs ~63 µs, and with two threads one is usually already awake
 * when the next request comes. bench/fuse-read.ts measures 1 vs 2 on the cold
 * path (every read a new version): see docs/performance.md. Two by default;
 * each idle thread costs an isolate (~5 MB RSS) per mount.
 *
 * Retention. An old version stays readable while the kernel holds its node
 * (an open fd, a dentry): dropping it earlier would turn a held fd's next
 * page-cache miss into ESTALE. The kernel FORGETs superseded nodes as soon as
 * their last fd closes (every one did in the spike and in the rotation-race
 * test), so the retained set is the versions open fds still hold. The bound
 * only guards against a container that pins versions forever (opens and
 * never closes across many rotations): beyond it the oldest are dropped and
 * the drop is logged.
 */

export const ENTRY_TIMEOUT_MS = 60_000;
export const ATTR_TIMEOUT_MS = 60_000;
export const DEFAULT_SERVING_THREADS = 2;
export const MAX_SERVING_THREADS = 8;
/** Superseded versions kept per mount while the kernel still holds them. */
export const MAX_RETAINED_VERSIONS = 256;
/** ... and their total size: 64 × the 500 KiB largest secret. */
export const MAX_RETAINED_BYTES = 32 * 1024 * 1024;
/** The kernel sends INIT at mount time; a thread answers it within milliseconds. */
export const INIT_TIMEOUT_MS = 5_000;
