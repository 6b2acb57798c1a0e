/** Crash-safe file helpers (used by the store's engine and by HUSH_HOME); light to import. */
import { open, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Makes a create, rename or unlink in the file's directory durable. */
export async function fsyncDir(filePath: string): Promise<void> {
  const dir = await open(dirname(filePath), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Writes a file so that after a crash it holds either the old or the new contents, never a mix. */
export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data, { mode, flush: true });
  await rename(tmp, path);
  await fsyncDir(path);
}
