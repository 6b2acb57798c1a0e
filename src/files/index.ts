/** Crash-safe and owner-safe file helpers (used by the store's engine, HUSH_HOME, and credentials the CLI writes); light to import. */
import { constants } from 'node:fs';
import { lstat, mkdir, open, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HushError } from '../errors/index.js';

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

/**
 * Throws unless `dir` is absent (returns false) or a directory only the
 * caller can write (returns true). Refused: a directory another user owns (or
 * a symlink to it that another user owns), or one its group or others may
 * write, because whoever can write the directory can plant files in it (a
 * key.pem they can read, a symlink) or swap ca.pem afterwards.
 */
export async function assertPrivateDirectory(dir: string): Promise<boolean> {
  const uid = process.geteuid?.();
  const link = await lstat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!link) return false;
  if (link.isSymbolicLink() && uid !== undefined && link.uid !== uid) {
    throw new HushError('forbidden', `${dir} is a symbolic link owned by uid ${link.uid}, not by you (uid ${uid}); refusing to write credentials through it`);
  }
  const info = await stat(dir);
  if (!info.isDirectory()) throw new HushError('bad_request', `${dir} is not a directory`);
  if (uid !== undefined && info.uid !== uid) {
    throw new HushError('forbidden', `${dir} is owned by uid ${info.uid}, not by you (uid ${uid}); refusing to write credentials into it: use a directory of your own`);
  }
  if ((info.mode & 0o022) !== 0) {
    throw new HushError('forbidden', `${dir} is writable by ${info.mode & 0o002 ? 'other users' : 'its group'} (mode ${(info.mode & 0o7777).toString(8).padStart(4, '0')}); refusing to write credentials into it: chmod go-w it, or use a new directory`);
  }
  return true;
}

/** Creates `dir` (and parents) 0700 if needed, then checks it as assertPrivateDirectory does. */
export async function makePrivateDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await assertPrivateDirectory(dir);
}

/** Throws unless none of `names` exists in `dir` (not even as a dangling symlink): checked before asking for anything that cannot be undone. */
export async function assertAbsent(dir: string, names: string[]): Promise<void> {
  for (const name of names) {
    const path = join(dir, name);
    const exists = await lstat(path).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return false;
        throw err;
      },
    );
    if (exists) throw new HushError('conflict', `${path} exists already; refusing to overwrite or follow it: use an empty directory, or remove the old file first`);
  }
}

/**
 * Creates `path` with `data`, mode 0600, exclusively: an existing file or a
 * symlink (even a dangling one) at `path` is an error, never written through.
 */
export async function createPrivateFile(path: string, data: string | Buffer): Promise<void> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  let file;
  try {
    file = await open(path, flags, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ELOOP') throw new HushError('conflict', `${path} exists already (file or symlink); refusing to overwrite or follow it`);
    throw err;
  }
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
}
