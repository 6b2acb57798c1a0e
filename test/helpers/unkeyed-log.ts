/**
 * The log format from before the log was keyed (format 1: "HUSHWAL1",
 * tag = SHA-256(previous tag || payload), snapshots with a SHA-256
 * `checksum`), written the way someone with write access to the data
 * directory but without the key would: from the files alone.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeCommit } from '../../src/store/commit-codec.js';
import type { KvOp } from '../../src/store/index.js';

const HEADER_BYTES = 8 + 8 + 32;
const RECORD_HEADER_BYTES = 4 + 4 + 32;

const sha256 = (...parts: Buffer[]) => parts.reduce((h, p) => h.update(p), createHash('sha256')).digest();

export interface RawRecord {
  offset: number;
  tag: Buffer;
  payload: Buffer;
}

/** The newest log segment of a data directory. */
export async function lastSegment(dir: string): Promise<string> {
  return join(dir, (await readdir(dir)).filter((f) => /^wal-\d+\.log$/.test(f)).sort().at(-1)!);
}

/** Splits a segment (either format) into its header and complete records, trusting nothing. */
export async function readRecords(path: string): Promise<{ header: Buffer; records: RawRecord[]; end: number }> {
  const data = await readFile(path);
  const records: RawRecord[] = [];
  let offset = HEADER_BYTES;
  while (offset + RECORD_HEADER_BYTES <= data.length) {
    const end = offset + RECORD_HEADER_BYTES + data.readUInt32BE(offset);
    if (end > data.length) break;
    records.push({ offset, tag: data.subarray(offset + 8, offset + RECORD_HEADER_BYTES), payload: data.subarray(offset + RECORD_HEADER_BYTES, end) });
    offset = end;
  }
  return { header: data.subarray(0, HEADER_BYTES), records, end: offset };
}

function frame(previous: Buffer, payload: Buffer): { tag: Buffer; record: Buffer } {
  const tag = sha256(previous, payload);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(payload.length, 0);
  head.writeUInt32BE(~payload.length >>> 0, 4);
  return { tag, record: Buffer.concat([head, tag, payload]) };
}

/**
 * Appends one commit after the last record, chained with SHA-256 from that
 * record's tag: a valid record of the old format. Resolves with its offset.
 */
export async function appendUnkeyedCommit(path: string, ops: KvOp[]): Promise<number> {
  const { header, records, end } = await readRecords(path);
  const last = records.at(-1);
  const previous = last?.tag ?? header.subarray(16, 48);
  const revision = last ? Number(last.payload.readBigUInt64BE(0)) + 1 : Number(header.readBigUInt64BE(8));
  const { record } = frame(previous, encodeCommit(revision, ops));
  const data = await readFile(path);
  await writeFile(path, Buffer.concat([data.subarray(0, end), record]));
  return end;
}

/**
 * Rewrites a segment's payloads through `edit` and re-chains every record
 * with SHA-256 from the segment's seed, as the old format would have it.
 */
export async function rewriteUnkeyed(path: string, edit: (payloads: Buffer[]) => Buffer[]): Promise<void> {
  const { header, records } = await readRecords(path);
  let previous: Buffer = Buffer.from(header.subarray(16, 48));
  const out: Buffer[] = [header];
  for (const payload of edit(records.map((r) => Buffer.from(r.payload)))) {
    const framed = frame(previous, payload);
    out.push(framed.record);
    previous = framed.tag;
  }
  await writeFile(path, Buffer.concat(out));
}

/** A whole segment in the old format: magic, start revision, seed, then the commits from that revision on. */
export function unkeyedSegment(startRevision: number, commits: KvOp[][], seed: Buffer = Buffer.alloc(32)): { bytes: Buffer; lastTag: Buffer } {
  const header = Buffer.alloc(HEADER_BYTES);
  header.write('HUSHWAL1', 0, 'latin1');
  header.writeBigUInt64BE(BigInt(startRevision), 8);
  seed.copy(header, 16);
  let previous: Buffer = seed;
  const out: Buffer[] = [header];
  for (const [i, ops] of commits.entries()) {
    const framed = frame(previous, encodeCommit(startRevision + i, ops));
    out.push(framed.record);
    previous = framed.tag;
  }
  return { bytes: Buffer.concat(out), lastTag: previous };
}

/** A snapshot in the old format: the body and its plain SHA-256 checksum. */
export function unkeyedSnapshot(revision: number, chainHash: Buffer, entries: [string, { value: string; modRevision: number }][]): string {
  const body = { revision, chainHash: chainHash.toString('hex'), entries };
  return JSON.stringify({ ...body, checksum: createHash('sha256').update(JSON.stringify(body)).digest('hex') });
}
