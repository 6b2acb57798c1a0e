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
 * cached name in use (see ENTRY_TIMEOUT_MS for why it is short), against
 * ~500k cached reads/s with one reader (0 requests per cached read).
 *
 * Serving threads. Each blocks in read(2) on /dev/fuse. Only page-cache misses
 * (the first read of a version), lookups and forgets reach them, never cached
 * reads. The spike, where every open reached userspace, found two threads
 * best: with one, every request paid a wake-up across vCPUs (~63 µs). Here a
 * first read costs two requests (LOOKUP, READ) back to back from the same
 * reader, and one thread did as well or better on these (busy) machines:
 * 2,000 new versions read once each, one reader, 1 vs 2 threads: 13k-28k vs
 * 6k-23k reads/s over 5 rounds of a scratch run (load average 7), and 7.2k vs
 * 6.2k reads/s with 83 vs 155 µs of agent CPU per read in the bench run of
 * docs/performance.md; two readers at once: 12.4k vs 12.1k. A second thread
 * splits the work and adds wake-ups, and each thread is an isolate: ~9.5 MB
 * of RSS (4 empty mounts took the agent from 52 to 91 MB with one thread
 * each, to 127 MB with two).
 * bench/fuse-read.ts measures both on each run (docs/performance.md).
 *
 * Retention. An old version stays readable while the kernel holds its node
 * (an open fd, a dentry): dropping it earlier would turn a held fd's next
 * page-cache miss into ESTALE. The kernel FORGETs superseded nodes as soon as
 * their last fd closes (every one did in the spike and in the rotation-race
 * test), so the retained set is the versions open fds still hold. The bound
 * only guards against a container that pins versions forever (opens and
 * never closes across many rotations): beyond it the oldest are dropped and
 * the drop is logged. It is checked RETENTION_GRACE_MS after a change, not at
 * once: rotating 2,000 files at a time (bench/fuse-read.ts, cold rows) retires
 * 2,000 nodes whose FORGETs arrive only after the notifications: all of
 * them within 100 ms on a quiet machine, but after more than a second with
 * the load average at 7. Checked at once, the bound would drop live versions.
 */

/**
 * 1 s, not longer, for the day the agent dies: the kernel then answers
 * nothing for the mount, but a name it still holds valid would open, and with
 * no_open read its cached pages, silently: a container would keep reading a
 * value whose rotations can no longer reach it. Once the entry expires, the
 * next open asks (LOOKUP) and fails with ENOTCONN, so an agent crash shows as
 * an error within a second (test/integration/docker-volume-plugin.test.ts).
 * The cost is one LOOKUP per second per name in use, against ~500k cached
 * reads/s; fds opened earlier keep reading their version, as they should.
 */
export const ENTRY_TIMEOUT_MS = 1_000;
/**
 * READ size, in 4 KiB pages (INIT's max_pages). 32 pages = 128 KiB, the
 * readahead window this kernel offers in INIT (max_readahead): sequential
 * reads never ask for more at once, so a larger value would only grow the
 * reply buffer of every thread. The first read of a 500 KiB version costs 4
 * READs; cached reads cost none (bench/fuse-read.ts).
 */
export const MAX_PAGES = 32;
export const ATTR_TIMEOUT_MS = 60_000;
export const DEFAULT_SERVING_THREADS = 1;
export const MAX_SERVING_THREADS = 8;
/** Superseded versions kept per mount while the kernel still holds them. */
export const MAX_RETAINED_VERSIONS = 256;
/** ... and their total size: 64 × the 500 KiB largest secret. */
export const MAX_RETAINED_BYTES = 32 * 1024 * 1024;
/** How long after a change the retention bound is checked. */
export const RETENTION_GRACE_MS = 5_000;
/** The kernel sends INIT at mount time; a thread answers it within milliseconds. */
export const INIT_TIMEOUT_MS = 5_000;
