/**
 * File attributes as the kernel sees them. The kernel (default_permissions)
 * decides access from these alone, so uid/gid/mode must be exactly the grant's.
 */
import { constants } from 'node:fs';
import type Fuse from 'fuse-native';
import type { SecretFile } from './types.js';

const BLOCK = 512;

/** The mount root: r-x for everyone, owned by root, never writable. */
export function rootStat(mountedAt: Date): Fuse.Stat {
  return {
    mode: constants.S_IFDIR | 0o555,
    uid: 0,
    gid: 0,
    size: 0,
    nlink: 2,
    atime: mountedAt,
    mtime: mountedAt,
    ctime: mountedAt,
  };
}

/** A secret file: atime/mtime/ctime all carry the version's time. */
export function fileStat(file: SecretFile): Fuse.Stat {
  return {
    // Only rwx bits come from the grant: a stray type bit must not turn the
    // file into a device or a directory, and setuid/setgid/sticky mean nothing
    // for a secret.
    mode: constants.S_IFREG | (file.mode & 0o777),
    uid: file.uid,
    gid: file.gid,
    size: file.size,
    nlink: 1,
    blksize: 4096,
    blocks: Math.ceil(file.size / BLOCK),
    atime: file.mtime,
    mtime: file.mtime,
    ctime: file.mtime,
  };
}
