/**
 * The payload of one WAL record: a commit's revision and operations, in a
 * small binary form. JSON would escape every value (records are JSON
 * already) and cost a stringify per commit on the write path.
 *
 *   revision (u64 BE) | op count (u32 BE) | per op: type (u8: 1 put, 2 delete) | key length (u32) | key | [value length (u32) | value]
 */
import type { KvOp } from './backend.js';

const PUT = 1;
const DELETE = 2;

export function encodeCommit(revision: number, ops: KvOp[]): Buffer {
  const parts = ops.map((op) => ({ op, key: Buffer.from(op.key), value: op.type === 'put' ? Buffer.from(op.value) : undefined }));
  const size = 12 + parts.reduce((n, p) => n + 5 + p.key.length + (p.value ? 4 + p.value.length : 0), 0);
  const out = Buffer.allocUnsafe(size);
  out.writeBigUInt64BE(BigInt(revision), 0);
  out.writeUInt32BE(ops.length, 8);
  let at = 12;
  for (const { key, value } of parts) {
    out[at] = value ? PUT : DELETE;
    out.writeUInt32BE(key.length, at + 1);
    key.copy(out, at + 5);
    at += 5 + key.length;
    if (value) {
      out.writeUInt32BE(value.length, at);
      value.copy(out, at + 4);
      at += 4 + value.length;
    }
  }
  return out;
}

/** Decodes a payload that passed its checksum; throws on a malformed one. */
export function decodeCommit(payload: Buffer): { revision: number; ops: KvOp[] } {
  const revision = Number(payload.readBigUInt64BE(0));
  const count = payload.readUInt32BE(8);
  const ops: KvOp[] = [];
  let at = 12;
  for (let i = 0; i < count; i++) {
    const type = payload[at];
    const keyLength = payload.readUInt32BE(at + 1);
    const key = payload.toString('utf8', at + 5, at + 5 + keyLength);
    at += 5 + keyLength;
    if (type === PUT) {
      const valueLength = payload.readUInt32BE(at);
      ops.push({ type: 'put', key, value: payload.toString('utf8', at + 4, at + 4 + valueLength) });
      at += 4 + valueLength;
    } else if (type === DELETE) {
      ops.push({ type: 'delete', key });
    } else {
      throw new Error(`unknown operation type ${type}`);
    }
  }
  if (at !== payload.length) throw new Error('trailing bytes after the last operation');
  return { revision, ops };
}
