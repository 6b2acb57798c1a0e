/**
 * The FUSE request handlers. Synchronous and small on purpose: every request
 * that reaches here has already cost two thread hand-offs, and a handler that
 * never answers leaves the reader stuck in the kernel, so each one answers
 * exactly once, errors included.
 */
import { constants as fsConstants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type Fuse from 'fuse-native';
import { log } from '../log/index.js';
import { fileStat, rootStat } from './attrs.js';
import type { HandleTable } from './handles.js';
import type { MountStats, SecretFile, SecretSource } from './types.js';

const { errno } = osConstants;
// fuse-native wants negative errno values.
const ENOENT = -errno.ENOENT;
const ENOTDIR = -errno.ENOTDIR;
const EBADF = -errno.EBADF;
const EIO = -errno.EIO;
const EROFS = -errno.EROFS;
const EISDIR = -errno.EISDIR;

const WRITE_FLAGS = fsConstants.O_WRONLY | fsConstants.O_RDWR | fsConstants.O_TRUNC | fsConstants.O_APPEND;

export interface OperationContext {
  source: SecretSource;
  handles: HandleTable;
  stats: MountStats;
  mountedAt: Date;
  mountpoint: string;
}

/** '/name' -> 'name'; the root and nested paths (we serve one flat level) -> undefined. */
function nameOf(path: string): string | undefined {
  const name = path.slice(1);
  return name === '' || name.includes('/') ? undefined : name;
}

function lookup(ctx: OperationContext, path: string): SecretFile | undefined {
  const name = nameOf(path);
  return name === undefined ? undefined : ctx.source.lookup(name);
}

export function makeOperations(ctx: OperationContext): Fuse.Operations {
  const { stats, handles } = ctx;

  // A throwing source must not leave the kernel request unanswered.
  function guarded(op: string, fail: (result: number) => void, body: () => void): void {
    try {
      body();
    } catch (err) {
      stats.errors++;
      // The message is the source's; it names a file at most, never its bytes.
      log.error({ mountpoint: ctx.mountpoint, op, error: (err as Error).message }, 'secrets mount: request failed');
      fail(EIO);
    }
  }

  // Every write-type request. With the `ro` mount option the kernel answers
  // EROFS before one gets here (the integration test checks `refused` stays 0);
  // these are the second wall, should the mount ever lose `ro`.
  const refuse = (...args: unknown[]): void => {
    stats.refused++;
    (args[args.length - 1] as Fuse.Done)(EROFS);
  };

  return {
    getattr(path, cb) {
      stats.getattr++;
      guarded('getattr', cb, () => {
        if (path === '/') return cb(0, rootStat(ctx.mountedAt));
        const file = lookup(ctx, path);
        if (file === undefined) return cb(ENOENT);
        cb(0, fileStat(file));
      });
    },

    readdir(path, cb) {
      stats.readdir++;
      guarded('readdir', cb, () => {
        if (path !== '/') return cb(lookup(ctx, path) ? ENOTDIR : ENOENT);
        cb(0, ['.', '..', ...ctx.source.list().map((f) => f.name)]);
      });
    },

    open(path, flags, cb) {
      stats.open++;
      guarded('open', cb, () => {
        if ((flags & WRITE_FLAGS) !== 0) return cb(EROFS);
        if (path === '/') return cb(EISDIR);
        const file = lookup(ctx, path);
        if (file === undefined) return cb(ENOENT);
        // The version is pinned here, at open, not at first read.
        cb(0, handles.add(file.open()));
      });
    },

    read(_path, fd, buf, len, pos, cb) {
      stats.read++;
      guarded('read', cb, () => {
        const version = handles.get(fd);
        if (version === undefined) return cb(EBADF);
        if (pos >= version.size) return cb(0);
        const chunk = version.read(pos, Math.min(len, version.size - pos));
        const n = chunk.copy(buf, 0, 0, Math.min(chunk.length, len));
        // Plaintext lives no longer than the request that needed it.
        chunk.fill(0);
        cb(n);
      });
    },

    release(_path, fd, cb) {
      stats.release++;
      handles.release(fd);
      cb(0);
    },

    write: refuse,
    create: refuse,
    mknod: refuse,
    mkdir: refuse,
    unlink: refuse,
    rmdir: refuse,
    rename: refuse,
    link: refuse,
    symlink: refuse,
    chmod: refuse,
    chown: refuse,
    truncate: refuse,
    ftruncate: refuse,
    utimens: refuse,
    setxattr: refuse,
    removexattr: refuse,
  };
}
