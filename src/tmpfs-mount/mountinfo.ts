/**
 * What is mounted where, from /proc/self/mountinfo (proc(5)). Reading it never
 * touches a FUSE filesystem, so it is safe even while one of ours is hung.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';

export interface MountEntry {
  /** Unique per mount, even when several are stacked on one mount point. */
  id: number;
  mountpoint: string;
  fstype: string;
  major: number;
  minor: number;
}

// Mount points escape space, tab, newline and backslash as \ooo.
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    // Optional fields end at a lone '-'; fstype is the first field after it.
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 2) continue;
    const [major, minor] = fields[2].split(':').map(Number);
    entries.push({ id: Number(fields[0]), mountpoint: unescape(fields[4]), fstype: fields[dash + 1], major, minor });
  }
  return entries;
}

export async function readMounts(): Promise<MountEntry[]> {
  return parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

export async function isMounted(mountpoint: string): Promise<boolean> {
  const target = resolve(mountpoint);
  return (await readMounts()).some((m) => m.mountpoint === target);
}
