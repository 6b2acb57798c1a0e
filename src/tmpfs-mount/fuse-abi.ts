/**
 * The FUSE kernel protocol as hush speaks it on /dev/fuse: opcodes, flags and
 * the byte layout of every struct we read or write. Little-endian throughout
 * (the kernel's native order; FUSE has no other). Offsets in bytes. Layouts
 * follow include/uapi/linux/fuse.h; the header installed here is 7.38, so the
 * 7.39+ parts (STATX, the init_out tail) are written out by hand below.
 *
 * Every request the kernel hands us (one read(2) of /dev/fuse):
 *
 *   fuse_in_header (40)   len u32 @0 | opcode u32 @4 | unique u64 @8 | nodeid u64 @16
 *                         | uid u32 @24 | gid u32 @28 | pid u32 @32 | total_extlen u16 @36 | pad u16 @38
 *   then the opcode's body (below), then total_extlen * 8 bytes of extensions (we negotiate none).
 *
 * Every reply we write (one write(2)):
 *
 *   fuse_out_header (16)  len u32 @0 | error i32 @4 (0 or -errno) | unique u64 @8
 *   then the reply body, only when error is 0.
 *
 * Request bodies we read (offsets from the end of the in header):
 *
 *   INIT    fuse_init_in (64)     major u32 @0 | minor u32 @4 | max_readahead u32 @8 | flags u32 @12
 *                                 | flags2 u32 @16 (7.36+, when flags has INIT_EXT) | unused[11]
 *   LOOKUP  name bytes, NUL-terminated
 *   FORGET  fuse_forget_in (8)    nlookup u64 @0
 *   BATCH_FORGET                  count u32 @0 | dummy u32 @4 | count × fuse_forget_one (16): nodeid u64 @0 | nlookup u64 @8
 *   GETATTR fuse_getattr_in (16)  getattr_flags u32 @0 | dummy u32 @4 | fh u64 @8
 *   STATX   fuse_statx_in (24)    getattr_flags u32 @0 | reserved u32 @4 | fh u64 @8 | sx_flags u32 @16 | sx_mask u32 @20
 *   READ, READDIR  fuse_read_in (40)  fh u64 @0 | offset u64 @8 | size u32 @16 | read_flags u32 @20
 *                                 | lock_owner u64 @24 | flags u32 @32 | pad u32 @36
 *   OPEN, OPENDIR  fuse_open_in (8)   flags u32 @0 | open_flags u32 @4
 *   INTERRUPT fuse_interrupt_in (8)   unique u64 @0
 *
 * Reply bodies we write:
 *
 *   fuse_attr (88)        ino u64 @0 | size u64 @8 | blocks u64 @16 | atime u64 @24 | mtime u64 @32 | ctime u64 @40
 *                         | atimensec u32 @48 | mtimensec u32 @52 | ctimensec u32 @56 | mode u32 @60 | nlink u32 @64
 *                         | uid u32 @68 | gid u32 @72 | rdev u32 @76 | blksize u32 @80 | flags u32 @84
 *   fuse_entry_out (128)  nodeid u64 @0 | generation u64 @8 | entry_valid u64 @16 | attr_valid u64 @24
 *                         | entry_valid_nsec u32 @32 | attr_valid_nsec u32 @36 | fuse_attr @40
 *   fuse_attr_out (104)   attr_valid u64 @0 | attr_valid_nsec u32 @8 | dummy u32 @12 | fuse_attr @16
 *   fuse_statx_out (288)  attr_valid u64 @0 | attr_valid_nsec u32 @8 | flags u32 @12 | spare u64[2] @16 | fuse_statx @32
 *   fuse_statx (256)      mask u32 @0 | blksize u32 @4 | attributes u64 @8 | nlink u32 @16 | uid u32 @20 | gid u32 @24
 *                         | mode u16 @28 | spare u16 @30 | ino u64 @32 | size u64 @40 | blocks u64 @48
 *                         | attributes_mask u64 @56 | atime @64 | btime @80 | ctime @96 | mtime @112 (each
 *                         fuse_sx_time (16): sec i64 @0 | nsec u32 @8 | reserved i32 @12) | rdev_major u32 @128
 *                         | rdev_minor u32 @132 | dev_major u32 @136 | dev_minor u32 @140 | spare u64[14] @144
 *   fuse_init_out (64)    major u32 @0 | minor u32 @4 | max_readahead u32 @8 | flags u32 @12 | max_background u16 @16
 *                         | congestion_threshold u16 @18 | max_write u32 @20 | time_gran u32 @24 | max_pages u16 @28
 *                         | map_alignment u16 @30 | flags2 u32 @32 | max_stack_depth u32 @36 (7.40)
 *                         | request_timeout u16 @40 (7.43) | unused u16[11]
 *   fuse_open_out (16)    fh u64 @0 | open_flags u32 @8 | backing_id i32 @12
 *   fuse_kstatfs (80)     blocks u64 @0 | bfree u64 @8 | bavail u64 @16 | files u64 @24 | ffree u64 @32
 *                         | bsize u32 @40 | namelen u32 @44 | frsize u32 @48 | pad u32 @52 | spare u32[6] @56
 *   fuse_dirent (24 + name, padded to 8)  ino u64 @0 | off u64 @8 | namelen u32 @16 | type u32 @20 | name @24
 *
 * Notifications we write (out header with unique 0 and the notify code in `error`):
 *
 *   INVAL_ENTRY  fuse_notify_inval_entry_out (16) + name + NUL   parent u64 @0 | namelen u32 @8 | flags u32 @12
 *   INVAL_INODE  fuse_notify_inval_inode_out (24)                ino u64 @0 | off i64 @8 | len i64 @16
 *   STORE        fuse_notify_store_out (24) + bytes                nodeid u64 @0 | offset u64 @8 | size u32 @16 | padding u32 @20
 */

export const ROOT_ID = 1;
export const KERNEL_MAJOR = 7;
/**
 * The oldest protocol we accept: 7.31 (Linux 5.2). By then the kernel has every
 * feature we rely on (NO_OPEN_SUPPORT 7.23, MAX_PAGES 7.28, NO_OPENDIR_SUPPORT
 * 7.29) and takes the 64-byte init_out we send.
 */
export const MIN_KERNEL_MINOR = 31;
/** What we tell the kernel we speak: 7.40 adds nothing we send past the layouts above. */
export const OUR_MINOR = 40;

export const IN_HEADER_BYTES = 40;
export const OUT_HEADER_BYTES = 16;
export const ATTR_BYTES = 88;
export const ENTRY_OUT_BYTES = 40 + ATTR_BYTES;
export const ATTR_OUT_BYTES = 16 + ATTR_BYTES;
export const STATX_OUT_BYTES = 32 + 256;
export const INIT_OUT_BYTES = 64;
export const OPEN_OUT_BYTES = 16;
export const STATFS_OUT_BYTES = 80;
export const DIRENT_HEADER_BYTES = 24;

export const Op = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  STATX: 52,
} as const;

const OP_NAMES = new Map<number, string>(Object.entries(Op).map(([name, code]) => [code, name.toLowerCase()]));

/** 'lookup', 'read', ... or 'op<N>' for an opcode we do not know. */
export function opName(opcode: number): string {
  return OP_NAMES.get(opcode) ?? `op${opcode}`;
}

/** Requests the kernel expects no reply to. */
export const NO_REPLY_OPS: ReadonlySet<number> = new Set([Op.FORGET, Op.BATCH_FORGET, Op.INTERRUPT, Op.NOTIFY_REPLY]);

/** Requests that would change the filesystem: answered EROFS (the `ro` mount option stops them first). */
export const WRITE_OPS: ReadonlySet<number> = new Set([
  Op.SETATTR,
  Op.SYMLINK,
  Op.MKNOD,
  Op.MKDIR,
  Op.UNLINK,
  Op.RMDIR,
  Op.RENAME,
  Op.LINK,
  Op.WRITE,
  Op.SETXATTR,
  Op.REMOVEXATTR,
  Op.CREATE,
  Op.FALLOCATE,
  Op.RENAME2,
  Op.COPY_FILE_RANGE,
  Op.TMPFILE,
]);

/** fuse_init_in/out `flags` bits (the low 32 of the 64). */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  BIG_WRITES: 1 << 5,
  DO_READDIRPLUS: 1 << 13,
  NO_OPEN_SUPPORT: 1 << 17,
  PARALLEL_DIROPS: 1 << 18,
  MAX_PAGES: 1 << 22,
  NO_OPENDIR_SUPPORT: 1 << 24,
  INIT_EXT: 1 << 30,
} as const;

/** fuse_open_out `open_flags`. */
export const OpenFlag = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
} as const;

export const Notify = {
  INVAL_INODE: 2,
  INVAL_ENTRY: 3,
  STORE: 4,
} as const;

/** Directory entry types (DT_* of dirent.h). */
export const DT_DIR = 4;
export const DT_REG = 8;

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;

/** STATX_* mask bits we fill: type, mode, nlink, uid, gid, atime, mtime, ctime, ino, size, blocks. */
const STATX_BASIC_STATS = 0x7ff;

/** errno values (Linux, all architectures we run on). */
export const Errno = {
  ENOENT: 2,
  EIO: 5,
  EBADF: 9,
  EACCES: 13,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EROFS: 30,
  ENOSYS: 38,
  EPROTO: 71,
  ESTALE: 116,
} as const;

/** The header of one request, decoded. Node ids and uniques beyond 2^53 never occur (the kernel's are counters). */
export interface RequestHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
  /** Bytes of extensions at the end of the request. */
  extBytes: number;
}

export function readU64(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset) + buf.readUInt32LE(offset + 4) * 0x1_0000_0000;
}

export function writeU64(buf: Buffer, offset: number, value: number): void {
  buf.writeUInt32LE(value >>> 0, offset);
  buf.writeUInt32LE(Math.floor(value / 0x1_0000_0000) >>> 0, offset + 4);
}

/** Undefined when fewer than a header's bytes arrived. */
export function decodeHeader(buf: Buffer, length: number): RequestHeader | undefined {
  if (length < IN_HEADER_BYTES) return undefined;
  return {
    len: buf.readUInt32LE(0),
    opcode: buf.readUInt32LE(4),
    unique: buf.readBigUInt64LE(8),
    nodeid: readU64(buf, 16),
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32),
    extBytes: buf.readUInt16LE(36) * 8,
  };
}

/** Seconds and nanoseconds of a time in milliseconds (never negative: the kernel's times are unsigned). */
export function splitTime(ms: number): [seconds: number, nanoseconds: number] {
  const clamped = Math.max(0, ms);
  const seconds = Math.floor(clamped / 1000);
  return [seconds, Math.round((clamped - seconds * 1000) * 1e6)];
}

/** What the kernel sees of a node: the root directory or one version of one file. */
export interface NodeAttr {
  ino: number;
  size: number;
  /** Full st_mode: type and permission bits. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  mtimeMs: number;
}

export function writeAttr(out: Buffer, at: number, a: NodeAttr): void {
  out.fill(0, at, at + ATTR_BYTES);
  const [sec, nsec] = splitTime(a.mtimeMs);
  writeU64(out, at, a.ino);
  writeU64(out, at + 8, a.size);
  writeU64(out, at + 16, Math.ceil(a.size / 512));
  for (const o of [24, 32, 40]) writeU64(out, at + o, sec);
  for (const o of [48, 52, 56]) out.writeUInt32LE(nsec, at + o);
  out.writeUInt32LE(a.mode, at + 60);
  out.writeUInt32LE(a.nlink, at + 64);
  out.writeUInt32LE(a.uid, at + 68);
  out.writeUInt32LE(a.gid, at + 72);
  out.writeUInt32LE(4096, at + 80);
}

export function writeStatx(out: Buffer, at: number, a: NodeAttr): void {
  out.fill(0, at, at + 256);
  const [sec, nsec] = splitTime(a.mtimeMs);
  out.writeUInt32LE(STATX_BASIC_STATS, at);
  out.writeUInt32LE(4096, at + 4);
  out.writeUInt32LE(a.nlink, at + 16);
  out.writeUInt32LE(a.uid, at + 20);
  out.writeUInt32LE(a.gid, at + 24);
  out.writeUInt16LE(a.mode & 0xffff, at + 28);
  writeU64(out, at + 32, a.ino);
  writeU64(out, at + 40, a.size);
  writeU64(out, at + 48, Math.ceil(a.size / 512));
  // atime, ctime, mtime; btime stays zero and out of the mask (we do not know it).
  for (const o of [64, 96, 112]) {
    writeU64(out, at + o, sec);
    out.writeUInt32LE(nsec, at + o + 8);
  }
}

/** A notification: out header with unique 0, the code in the error field, then `payload`. */
function notification(code: number, payload: Buffer): Buffer {
  const msg = Buffer.alloc(OUT_HEADER_BYTES + payload.length);
  msg.writeUInt32LE(msg.length, 0);
  msg.writeInt32LE(code, 4);
  payload.copy(msg, OUT_HEADER_BYTES);
  return msg;
}

export function invalEntryNotification(parent: number, name: string): Buffer {
  const nameBytes = Buffer.from(name);
  const payload = Buffer.alloc(16 + nameBytes.length + 1);
  writeU64(payload, 0, parent);
  payload.writeUInt32LE(nameBytes.length, 8);
  nameBytes.copy(payload, 16);
  return notification(Notify.INVAL_ENTRY, payload);
}

/**
 * The node's bytes from offset 0, into its page cache. The kernel takes it
 * only for a node it holds (else ENOENT). The caller zeroes the message.
 */
export function storeNotification(ino: number, bytes: Buffer): Buffer {
  const payload = Buffer.alloc(24 + bytes.length);
  writeU64(payload, 0, ino);
  payload.writeUInt32LE(bytes.length, 16);
  bytes.copy(payload, 24);
  try {
    return notification(Notify.STORE, payload);
  } finally {
    payload.fill(0);
  }
}

/** off 0, len 0: the node's attributes and all its cached pages (for a directory: its cached listing). */
export function invalInodeNotification(ino: number): Buffer {
  const payload = Buffer.alloc(24);
  writeU64(payload, 0, ino);
  return notification(Notify.INVAL_INODE, payload);
}
