/**
 * What is mounted where, for the suites: the product's own reading of
 * /proc/self/mountinfo (src/tmpfs-mount/mountinfo.ts), so there is one parser
 * to get right. Reading it never touches a FUSE filesystem, so it is safe
 * from the process that serves one (reading the mount itself would deadlock).
 *
 * The tmpfs-mount door does not export the parser (the agent has no use for
 * it), so the tests import the module itself.
 */
import { readMounts } from '../../src/tmpfs-mount/mountinfo.js';

export { isMounted as isMountedAt, readMounts } from '../../src/tmpfs-mount/mountinfo.js';

/** hush's FUSE mounts (type fuse.hush) at or under `dir`. */
export async function hushMountsUnder(dir: string): Promise<string[]> {
  return (await readMounts()).filter((m) => m.fstype === 'fuse.hush' && (m.mountpoint === dir || m.mountpoint.startsWith(`${dir}/`))).map((m) => m.mountpoint);
}
