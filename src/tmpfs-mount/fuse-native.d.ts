/**
 * The part of fuse-native 2.2.x (CommonJS, untyped) that this folder uses.
 * Conventions of the library: a callback's first argument is 0 or a negative
 * errno; for read/write it is the byte count instead. Times may be Dates or
 * milliseconds (the binding keeps millisecond precision only).
 */
declare module 'fuse-native' {
  namespace Fuse {
    interface Stat {
      mode: number;
      uid: number;
      gid: number;
      size: number;
      nlink?: number;
      blksize?: number;
      blocks?: number;
      atime: Date | number;
      mtime: Date | number;
      ctime: Date | number;
    }

    type Done = (result: number) => void;

    interface Operations {
      getattr?(path: string, cb: (result: number, stat?: Stat) => void): void;
      readdir?(path: string, cb: (result: number, names?: string[]) => void): void;
      open?(path: string, flags: number, cb: (result: number, fd?: number) => void): void;
      read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Done): void;
      release?(path: string, fd: number, cb: Done): void;
      write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Done): void;
      create?(path: string, mode: number, cb: (result: number, fd?: number) => void): void;
      mknod?(path: string, mode: number, dev: number, cb: Done): void;
      mkdir?(path: string, mode: number, cb: Done): void;
      unlink?(path: string, cb: Done): void;
      rmdir?(path: string, cb: Done): void;
      rename?(src: string, dest: string, cb: Done): void;
      link?(src: string, dest: string, cb: Done): void;
      symlink?(src: string, dest: string, cb: Done): void;
      chmod?(path: string, mode: number, cb: Done): void;
      chown?(path: string, uid: number, gid: number, cb: Done): void;
      truncate?(path: string, size: number, cb: Done): void;
      ftruncate?(path: string, fd: number, size: number, cb: Done): void;
      utimens?(path: string, atime: number, mtime: number, cb: Done): void;
      setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Done): void;
      removexattr?(path: string, name: string, cb: Done): void;
    }

    interface Options {
      /** Per-request reply deadline in ms, or false for none. Default 15 s. */
      timeout?: number | false;
      debug?: boolean;
    }
  }

  class Fuse {
    constructor(mnt: string, ops: Fuse.Operations, opts?: Fuse.Options);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    /** Runs `fusermount -uz` (lazy), then releases the binding's loop handle. */
    unmount(cb: (err: Error | null) => void): void;
    /** Builds the `-o...` argument handed to libfuse; overridden in fuse-session.ts. */
    protected _fuseOptions(): string;

    static readonly EPERM: number;
    static readonly ENOENT: number;
    static readonly EIO: number;
    static readonly EBADF: number;
    static readonly EACCES: number;
    static readonly EISDIR: number;
    static readonly EROFS: number;
  }

  export = Fuse;
}
