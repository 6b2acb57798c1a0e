import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temporary directory on disk (not tmpfs: durability tests need a real fsync). */
export async function tempDir(prefix = 'hush-test-'): Promise<string> {
  return mkdtemp(join(process.env.HUSH_TEST_TMP ?? tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
