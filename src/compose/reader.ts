/**
 * The only I/O of src/compose: reading the compose files, the `.env` beside
 * the first one, and `file:` secrets. Everything else takes a ComposeReader,
 * so tests can hand in an in-memory one and the loader stays pure.
 */
import { readFileSync, statSync } from 'node:fs';

export interface ComposeReader {
  /** The file's bytes; throws an error with a Node `code` (ENOENT, EACCES, EISDIR, ...) when it cannot. */
  read(path: string): Uint8Array;
}

export const fileSystemReader: ComposeReader = {
  read(path: string): Uint8Array {
    // A FIFO or /dev/zero given as `file:` would block or never end; only regular files are secrets.
    if (!statSync(path).isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'ENOTREG' });
    const bytes = readFileSync(path);
    // A plain Uint8Array view (no copy): callers compare and serialise it as bytes, not as a Buffer.
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  },
};

const WHY: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a parent is not a directory',
  ENOTREG: 'not a regular file',
};

/** A short reason for a read failure, without the stack or errno noise. */
export function readFailure(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && WHY[code] !== undefined) return WHY[code];
  return err instanceof Error ? err.message : String(err);
}

export function isMissing(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'ENOENT';
}
