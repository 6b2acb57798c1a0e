/**
 * One version of one file as the serving threads hold it: its bytes sealed
 * under the mount's key in a SharedArrayBuffer (shared with every serving
 * thread, never copied), and the kernel's reference count of its node.
 *
 * Why a second seal: the agent's cache seals values under a key only its main
 * thread can use, and a serving thread cannot call into the main thread
 * without a cross-thread wake per request (~60 µs on these VMs, more than the
 * whole request). So when a version becomes visible, the main thread decrypts
 * it once, seals it under the mount's key and zeroes the plaintext; a serving
 * thread decrypts only the chunks a READ asks for, copies them into its reply
 * and zeroes them. Plaintext exists only for those moments (and, as the kernel
 * keeps it, in the mount's page cache).
 *
 * Layout of the buffer:
 *
 *   state i32 @0 | reserved u32 @4 | chunk 0 | chunk 1 | ...
 *   chunk i: nonce (12) | ciphertext (min(CHUNK_BYTES, size - i * CHUNK_BYTES)) | tag (16)
 *
 * AAD = "hush-fuse" 0 node id 0 i 0 count: a chunk cannot move to another node
 * or position without failing authentication.
 *
 * state = lookups * 2 + superseded, or DROPPED (-1). `lookups` is the kernel's
 * nlookup of the node (LOOKUP replies minus FORGET counts); `superseded` is set
 * by the main thread once the name points at a newer version (or is gone). The
 * version is dropped when both hold: superseded and no lookup left. Whichever
 * thread makes that true wins the compare-and-swap to DROPPED and reports it,
 * so it happens exactly once, and a LOOKUP can never hand out a dropped node.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

/**
 * As the agent's cache seals (secret-version.ts): a READ of at most 128 KiB
 * opens two or three chunks; a 1 KiB secret is one, whose decrypt is most of
 * the ~12 µs a cold READ costs in JavaScript (measured with the dispatcher alone).
 */
const CHUNK_BYTES = 64 * 1024;
const HEADER_BYTES = 8;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const ALGORITHM = 'chacha20-poly1305';
export const KEY_BYTES = 32;
const DROPPED = -1;

const chunkCount = (size: number): number => Math.ceil(size / CHUNK_BYTES);
const chunkOffset = (i: number): number => HEADER_BYTES + i * (NONCE_BYTES + CHUNK_BYTES + TAG_BYTES);
const aad = (node: number, i: number, count: number): Buffer => Buffer.from(`hush-fuse\0${node}\0${i}\0${count}`);

/** Per mount: the key and the nonce counter (only the main thread seals). */
export class MountKey {
  #key: Buffer;
  #counter = 0n;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) throw new RangeError('a mount key is 32 bytes');
    this.#key = key;
  }

  /** Seals `plaintext` for node `node` into a new shared buffer (the caller zeroes `plaintext`). */
  seal(node: number, plaintext: Buffer): SharedArrayBuffer {
    const count = chunkCount(plaintext.length);
    const shared = new SharedArrayBuffer(HEADER_BYTES + plaintext.length + count * (NONCE_BYTES + TAG_BYTES));
    const view = Buffer.from(shared);
    for (let i = 0; i < count; i++) {
      const at = chunkOffset(i);
      const nonce = view.subarray(at, at + NONCE_BYTES);
      nonce.writeBigUInt64BE(++this.#counter, NONCE_BYTES - 8);
      const cipher = createCipheriv(ALGORITHM, this.#key, nonce, { authTagLength: TAG_BYTES });
      const part = plaintext.subarray(i * CHUNK_BYTES, Math.min(plaintext.length, (i + 1) * CHUNK_BYTES));
      cipher.setAAD(aad(node, i, count), { plaintextLength: part.length });
      const body = cipher.update(part);
      cipher.final();
      body.copy(view, at + NONCE_BYTES);
      cipher.getAuthTag().copy(view, at + NONCE_BYTES + part.length);
    }
    return shared;
  }

  /** The whole plaintext of a version sealed with this key (the caller zeroes it). */
  open(node: number, shared: SharedArrayBuffer, size: number): Buffer {
    const plaintext = Buffer.alloc(size);
    openRange(this.#key, node, shared, size, 0, size, plaintext, 0);
    return plaintext;
  }

  /** Wipes the key. */
  destroy(): void {
    this.#key.fill(0);
  }
}

/**
 * Decrypts bytes [offset, offset + length) of a sealed version (clamped to
 * `size`) into `out` at `outAt`; returns how many bytes it wrote. Only the
 * chunks that overlap the range are opened, and each is zeroed after the copy.
 */
export function openRange(key: Uint8Array, node: number, shared: SharedArrayBuffer, size: number, offset: number, length: number, out: Buffer, outAt: number): number {
  const end = Math.min(size, offset + length);
  if (offset >= end) return 0;
  const view = Buffer.from(shared);
  const count = chunkCount(size);
  for (let i = Math.floor(offset / CHUNK_BYTES); i * CHUNK_BYTES < end; i++) {
    const start = i * CHUNK_BYTES;
    const partLength = Math.min(CHUNK_BYTES, size - start);
    const at = chunkOffset(i);
    const decipher = createDecipheriv(ALGORITHM, key, view.subarray(at, at + NONCE_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(node, i, count), { plaintextLength: partLength });
    decipher.setAuthTag(view.subarray(at + NONCE_BYTES + partLength, at + NONCE_BYTES + partLength + TAG_BYTES));
    const plain = decipher.update(view.subarray(at + NONCE_BYTES, at + NONCE_BYTES + partLength));
    try {
      decipher.final();
      const from = Math.max(offset, start) - start;
      const to = Math.min(end, start + partLength) - start;
      plain.copy(out, outAt + start + from - offset, from, to);
    } finally {
      plain.fill(0);
    }
  }
  return end - offset;
}

/** The node's state word. */
export function stateOf(shared: SharedArrayBuffer): Int32Array {
  return new Int32Array(shared, 0, 1);
}

/** A LOOKUP handing out the node: false if it was dropped meanwhile (the caller must look again). */
export function addLookup(state: Int32Array): boolean {
  for (;;) {
    const s = Atomics.load(state, 0);
    if (s === DROPPED) return false;
    if (Atomics.compareExchange(state, 0, s, s + 2) === s) return true;
  }
}

/** A FORGET of `n` lookups. True when this call dropped the node (superseded, none left). */
export function forgetLookups(state: Int32Array, n: number): boolean {
  for (;;) {
    const s = Atomics.load(state, 0);
    if (s === DROPPED) return false;
    const left = Math.max(0, (s >> 1) - n);
    const superseded = s & 1;
    const next = left === 0 && superseded ? DROPPED : left * 2 + superseded;
    if (Atomics.compareExchange(state, 0, s, next) === s) return next === DROPPED;
  }
}

/** The main thread retiring the node. True when this call dropped it (no lookup left). */
export function supersede(state: Int32Array): boolean {
  for (;;) {
    const s = Atomics.load(state, 0);
    if (s === DROPPED) return false;
    const next = s >> 1 === 0 ? DROPPED : s | 1;
    if (Atomics.compareExchange(state, 0, s, next) === s) return next === DROPPED;
  }
}

/** Drops the node whatever its lookups (the retention bound, or the mount going away for good). */
export function forceDrop(state: Int32Array): boolean {
  return Atomics.exchange(state, 0, DROPPED) !== DROPPED;
}
