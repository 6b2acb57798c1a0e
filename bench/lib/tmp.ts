/**
 * Scratch directories for benchmarks. Durable-write figures mean nothing on
 * tmpfs (fdatasync is free there), so the directory must live on the same
 * disk as the repository: os.tmpdir() when it shares the repo's device,
 * otherwise /var/tmp, otherwise a dot-directory next to bench/.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TMPFS_MAGIC = 0x01021994;
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function usable(dir: string, repoDev: number): Promise<boolean> {
  try {
    const [s, fs] = await Promise.all([stat(dir), statfs(dir)]);
    return s.isDirectory() && s.dev === repoDev && fs.type !== TMPFS_MAGIC;
  } catch {
    return false;
  }
}

let base: Promise<string> | undefined;

/** The parent for scratch directories: on the repository's disk, never tmpfs. */
export function scratchBase(): Promise<string> {
  base ??= (async () => {
    const repoDev = (await stat(REPO_ROOT)).dev;
    for (const dir of [process.env.HUSH_BENCH_TMP, tmpdir(), '/var/tmp']) {
      if (dir && (await usable(dir, repoDev))) return dir;
    }
    return join(REPO_ROOT, 'bench'); // always on the repo's disk
  })();
  return base;
}

export interface ScratchDir {
  path: string;
  remove(): Promise<void>;
}

/** Directories not yet removed; an interrupted run (Ctrl-C) removes them on the way out. */
const live = new Set<string>();
process.once('exit', () => {
  for (const path of live) rmSync(path, { recursive: true, force: true });
});

export async function makeScratchDir(prefix: string): Promise<ScratchDir> {
  const path = await mkdtemp(join(await scratchBase(), `.hush-bench-${prefix}-`));
  live.add(path);
  return {
    path,
    async remove() {
      await rm(path, { recursive: true, force: true });
      live.delete(path);
    },
  };
}

/** "path (fstype on device)" for the scratch base, from /proc/mounts: shows the figures were taken on a real disk. */
export async function describeScratch(): Promise<string> {
  const dir = await scratchBase();
  try {
    const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').map((line) => line.split(' '));
    const best = mounts
      .filter(([, point]) => point && (dir === point || dir.startsWith(point.endsWith('/') ? point : `${point}/`)))
      .sort((a, b) => b[1].length - a[1].length)[0];
    return best ? `${dir} (${best[2]} on ${best[0]})` : dir;
  } catch {
    return dir;
  }
}
