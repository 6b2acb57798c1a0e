/**
 * What is mounted where, for the suites: one reading of /proc/self/mountinfo
 * (proc(5)). Reading it never touches a FUSE filesystem, so it is safe from
 * the process that serves one (reading the mount itself would deadlock).
 *
 * The product parses the same file in src/tmpfs-mount/mountinfo.ts; its door
 * does not export that parser, so the tests read the file here, the same way:
 * fstype is the field after the lone "-", and mount points escape space, tab,
 * newline and backslash as \ooo.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';

export interface Mount {
  mountpoint: string;
  fstype: string;
}

export async function readMounts(): Promise<Mount[]> {
  const mounts: Mount[] = [];
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 2) continue;
    mounts.push({ mountpoint: fields[4]!.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))), fstype: fields[dash + 1]! });
  }
  return mounts;
}

export async function isMountedAt(mountpoint: string): Promise<boolean> {
  const target = resolve(mountpoint);
  return (await readMounts()).some((m) => m.mountpoint === target);
}

/** hush's FUSE mounts (type fuse.hush) at or under `dir`. */
export async function hushMountsUnder(dir: string): Promise<string[]> {
  return (await readMounts()).filter((m) => m.fstype === 'fuse.hush' && (m.mountpoint === dir || m.mountpoint.startsWith(`${dir}/`))).map((m) => m.mountpoint);
}
