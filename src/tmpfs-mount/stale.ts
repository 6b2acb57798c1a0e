/**
 * cleanStaleMounts: removes what a crashed agent left under its mounts
 * directory. Call it at agent start, before mounting anything there: at that
 * point every mount under the directory is stale by definition, so it may be
 * torn down by force.
 *
 * A FUSE mount whose daemon died answers ENOTCONN and unmounts normally. One
 * whose daemon is alive but stuck leaves its readers in D state until its
 * kernel connection is aborted (/sys/fs/fuse/connections/N/abort); one still
 * in use (EBUSY) needs a lazy unmount.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { HushError } from '../errors/index.js';
import { log } from '../log/index.js';
import { run } from './exec.js';
import { readMounts, type MountEntry } from './mountinfo.js';

const CONNECTIONS = '/sys/fs/fuse/connections';
const TOOL_TIMEOUT_MS = 3000;

const isFuse = (m: MountEntry): boolean => m.fstype === 'fuse' || m.fstype.startsWith('fuse.');
const depth = (m: MountEntry): number => m.mountpoint.split('/').length;

/** Unmounts everything mounted below `parentDir` (not `parentDir` itself); returns the mount points cleaned. */
export async function cleanStaleMounts(parentDir: string): Promise<string[]> {
  const parent = resolve(parentDir);
  // '/' would mean every mount on the host.
  if (parent === '/') throw new HushError('bad_request', 'cleanStaleMounts needs a mounts directory, not /');
  const prefix = `${parent}/`;
  const cleaned: string[] = [];
  const tried = new Set<number>();
  for (;;) {
    const below = (await readMounts()).filter((m) => m.mountpoint.startsWith(prefix));
    if (below.length === 0) break;
    // Deepest first, and the last entry of a stacked mount point first: a mount
    // cannot go while another sits on top of it.
    const next = below.reduce((a, b) => (depth(b) >= depth(a) ? b : a));
    if (tried.has(next.id)) {
      throw new HushError('internal', `could not unmount ${next.mountpoint}; see the agent log`);
    }
    tried.add(next.id);
    await unmountStale(next);
    if (!cleaned.includes(next.mountpoint)) cleaned.push(next.mountpoint);
  }
  return cleaned;
}

async function unmountStale(m: MountEntry): Promise<void> {
  // Abort first, unconditionally: finding out whether a FUSE mount is hung
  // means touching it, which hangs the prober. For a dead daemon the abort is
  // a no-op; for a stuck one it frees every reader waiting on it, which a
  // plain unmount would not (they would wait for the daemon forever).
  if (isFuse(m)) await abortConnection(m);
  const first = isFuse(m)
    ? await run('fusermount', ['-u', m.mountpoint], TOOL_TIMEOUT_MS)
    : await run('umount', [m.mountpoint], TOOL_TIMEOUT_MS);
  if (first.ok) return;
  // Still busy (a process has a file open or its cwd inside): detach it now;
  // the kernel frees it when the last user lets go.
  const lazy = await run('umount', ['-l', m.mountpoint], TOOL_TIMEOUT_MS);
  if (!lazy.ok) log.error({ mountpoint: m.mountpoint, first: first.stderr, lazy: lazy.stderr }, 'stale mount: unmount failed');
}

/** The fusectl directory of a FUSE mount's connection (mounting fusectl if needed); undefined when it is gone. */
export async function fuseConnectionDir(m: MountEntry): Promise<string | undefined> {
  // fusectl names a connection after the superblock's kernel dev_t.
  const dir = `${CONNECTIONS}/${(m.major << 20) | m.minor}`;
  if (!(await readMounts()).some((e) => e.fstype === 'fusectl')) {
    // fusectl is not mounted on every host; mounting it is harmless.
    await run('mount', ['-t', 'fusectl', 'fusectl', CONNECTIONS], TOOL_TIMEOUT_MS);
  }
  return existsSync(dir) ? dir : undefined;
}

/** Makes every pending and future request of this FUSE connection fail at once. */
export async function abortConnection(m: MountEntry): Promise<void> {
  const dir = await fuseConnectionDir(m);
  // No entry: the connection is already gone (nothing left to abort).
  if (dir === undefined) return;
  try {
    // A control file in /sys (fusectl), not storage: it holds no secret and nothing lands on disk.
    await writeFile(`${dir}/abort`, '1');
  } catch (err) {
    log.warn({ mountpoint: m.mountpoint, error: (err as Error).message }, 'stale mount: could not abort the FUSE connection');
  }
}
