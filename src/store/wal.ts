/**
 * The write-ahead log: one segment file per snapshot period.
 *
 *   segment header: "HUSHWAL2" | start revision (u64 BE) | seed (32 bytes)
 *   record:         length L (u32 BE) | ~L (u32 BE) | tag (32 bytes) | payload (L bytes)
 *
 * tag = BLAKE2b-256 keyed with the log key (log-auth.ts) of (previous tag ||
 * payload), starting from the segment's seed, which is the tag the previous
 * segment (or snapshot) ended with. The tag is the record's checksum, its link
 * in the chain and its proof of origin: an edited, dropped, reordered or
 * added record is detected, and without the root key no one can write a
 * record that verifies. ~L guards the length, so a flipped length bit reads as
 * damage instead of as a torn tail that would be cut off.
 *
 * Recovery tells a torn tail (a crash during the last, unacknowledged write)
 * from damage (refuse to start, naming the file and offset). A torn tail is a
 * prefix of a record at the end of the file, or zeros where a power loss left
 * blocks unwritten. A whole record that fails its tag is damage even at the
 * end: a crash leaves a prefix of a write, never a whole record of wrong
 * bytes, and a record someone appended must not pass for a crash. Only the
 * last segment may have a torn tail.
 *
 * Format 1 ("HUSHWAL1", tag = unkeyed SHA-256(previous || payload)) is what
 * stores wrote before the log was keyed. It is read only to upgrade such a
 * data directory (embedded.ts), with its old rule that a last record failing
 * its checksum is torn.
 */
import { createHash } from 'node:crypto';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { CorruptionError } from './backend.js';
import type { LogAuth } from './log-auth.js';
import { fsyncDir } from '../files/index.js';

const MAGIC = Buffer.from('HUSHWAL2');
const UNKEYED_MAGIC = Buffer.from('HUSHWAL1');
export const SEGMENT_HEADER_BYTES = MAGIC.length + 8 + 32;
const RECORD_HEADER_BYTES = 4 + 4 + 32;

/** Format 1's chain: anyone can compute it, so it proves nothing about who wrote the record. */
export function unkeyedChainHash(previous: Buffer, payload: Buffer): Buffer {
  return createHash('sha256').update(previous).update(payload).digest();
}

export class WalWriter {
  private constructor(
    private readonly file: FileHandle,
    private readonly auth: LogAuth,
    private lastHash: Buffer,
    private size: number,
  ) {}

  /** Creates a new segment durably (header written and synced, directory synced). */
  static async create(path: string, startRevision: number, seed: Buffer, auth: LogAuth): Promise<WalWriter> {
    const file = await open(path, 'wx', 0o600);
    const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
    MAGIC.copy(header, 0);
    header.writeBigUInt64BE(BigInt(startRevision), MAGIC.length);
    seed.copy(header, MAGIC.length + 8);
    await file.write(header, 0, header.length, 0);
    await file.datasync();
    await fsyncDir(path);
    return new WalWriter(file, auth, seed, header.length);
  }

  /** Reopens a recovered segment for appending, cutting off a torn tail if there was one. */
  static async reopen(path: string, validBytes: number, lastHash: Buffer, auth: LogAuth): Promise<WalWriter> {
    const file = await open(path, 'r+');
    const { size } = await file.stat();
    if (size !== validBytes) {
      await file.truncate(validBytes);
      await file.datasync();
    }
    return new WalWriter(file, auth, lastHash, validBytes);
  }

  get bytes(): number {
    return this.size;
  }

  get hash(): Buffer {
    return this.lastHash;
  }

  /** Frames a payload as the next record of the chain. Call in commit order. */
  frame(payload: Buffer): Buffer {
    const hash = this.auth.chain(this.lastHash, payload);
    const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
    record.writeUInt32BE(payload.length, 0);
    record.writeUInt32BE(~payload.length >>> 0, 4);
    hash.copy(record, 8);
    payload.copy(record, RECORD_HEADER_BYTES);
    this.lastHash = hash;
    return record;
  }

  /** Appends framed records with one write and one fdatasync: the group commit. */
  async append(records: Buffer[]): Promise<void> {
    const total = records.reduce((n, r) => n + r.length, 0);
    let written = 0;
    while (written < total) {
      const { bytesWritten } = await this.file.writev(written === 0 ? records : [Buffer.concat(records).subarray(written)], this.size + written);
      written += bytesWritten;
    }
    await this.file.datasync();
    this.size += total;
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}

export interface RecoveredSegment {
  /** 2: keyed; 1: written before the log was keyed (upgrade only). */
  format: 1 | 2;
  startRevision: number;
  seed: Buffer;
  payloads: Buffer[];
  /** Offset of each payload's record, for errors that name where a record is. */
  offsets: number[];
  /** Bytes up to the end of the last intact record. */
  validBytes: number;
  lastHash: Buffer;
  /** Bytes after validBytes: a torn tail that recovery cuts off. */
  tornBytes: number;
}

/**
 * Reads and verifies a segment. `isLast` permits a torn tail; anywhere else,
 * damage throws CorruptionError naming the file and offset. Without `auth`
 * the frames are checked but not the tags: a look before the key is known
 * (the sealed keyring), never a source of anything served.
 */
export async function readSegment(path: string, isLast: boolean, auth: LogAuth | undefined): Promise<RecoveredSegment> {
  const data = await readFile(path);
  if (data.length < SEGMENT_HEADER_BYTES) {
    if (isLast) {
      // Crash while creating the segment: nothing in it was ever acknowledged.
      return { format: 2, startRevision: -1, seed: Buffer.alloc(32), payloads: [], offsets: [], validBytes: 0, lastHash: Buffer.alloc(32), tornBytes: data.length };
    }
    throw new CorruptionError(path, 0, 'segment header is truncated');
  }
  const magic = data.subarray(0, MAGIC.length);
  const format = magic.equals(MAGIC) ? 2 : magic.equals(UNKEYED_MAGIC) ? 1 : 0;
  if (format === 0) throw new CorruptionError(path, 0, 'not a hush write-ahead log segment');
  const chain = !auth ? undefined : format === 2 ? auth.chain : unkeyedChainHash;
  const startRevision = Number(data.readBigUInt64BE(MAGIC.length));
  const seed = Buffer.from(data.subarray(MAGIC.length + 8, SEGMENT_HEADER_BYTES));

  const payloads: Buffer[] = [];
  const offsets: number[] = [];
  let offset = SEGMENT_HEADER_BYTES;
  let hash: Buffer = seed;
  const torn = (reason: string): RecoveredSegment => {
    if (!isLast) throw new CorruptionError(path, offset, `${reason} in a segment that is not the last`);
    return { format, startRevision, seed, payloads, offsets, validBytes: offset, lastHash: hash, tornBytes: data.length - offset };
  };

  while (offset < data.length) {
    if (data.length - offset < RECORD_HEADER_BYTES) return torn('incomplete record header');
    const length = data.readUInt32BE(offset);
    const lengthCheck = data.readUInt32BE(offset + 4);
    if ((~length >>> 0) !== lengthCheck) {
      // A torn write past the end can leave zeros; anything else is damage.
      if (data.subarray(offset).every((b) => b === 0)) return torn('zeroed tail');
      throw new CorruptionError(path, offset, 'record length fails its check');
    }
    const end = offset + RECORD_HEADER_BYTES + length;
    if (end > data.length) return torn('incomplete record');
    const payload = data.subarray(offset + RECORD_HEADER_BYTES, end);
    const stored = data.subarray(offset + 8, offset + 8 + 32);
    const expected = chain ? chain(hash, payload) : Buffer.from(stored);
    if (!expected.equals(stored)) {
      const atEnd = end === data.length;
      // No payload ends in a zero byte (the last bytes are a key or a JSON value): zeros there are blocks a power loss left unwritten.
      if (atEnd && (format === 1 || data[end - 1] === 0)) return torn('last record fails its checksum');
      throw new CorruptionError(
        path,
        offset,
        format === 2 ? 'record fails its authentication (written without this store\'s key, or damaged)' : 'record fails its checksum (damage in the middle of the log)',
      );
    }
    payloads.push(Buffer.from(payload));
    offsets.push(offset);
    hash = expected;
    offset = end;
  }
  return { format, startRevision, seed, payloads, offsets, validBytes: offset, lastHash: hash, tornBytes: 0 };
}
