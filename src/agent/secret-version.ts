/**
 * One version of one secret as the agent holds it: sealed in 64 KiB chunks
 * under the process key, so a read of a few bytes (FUSE reads in pages)
 * decrypts only the chunks it touches. The object is immutable; a newer
 * version is a new object, so whoever holds this one (an open file) keeps
 * reading exactly this version until it lets go.
 */
import type { Sealer } from './sealer.js';

export const CHUNK_BYTES = 64 * 1024;

export interface SecretVersionInfo {
  name: string;
  version: number;
  createdAt: Date;
  /**
   * What the file shows as its modification time: the creation time, but
   * always later than the previous version's, because the kernel drops its
   * cached pages only when mtime or size changes (see src/tmpfs-mount).
   */
  mtime: Date;
  size: number;
  /** The store's id of the secret ('' when the store sent none, and for renderings): with the version, it names one value. */
  secretId?: string;
}

/**
 * A zero-filled buffer whose bytes live outside the V8 heap. Buffer.alloc
 * puts up to 64 bytes inside the V8 heap, where the garbage collector moves
 * young objects by copying them, so a plaintext moved before its reader
 * zeroes it leaves a copy that nothing zeroes: the secret-hygiene memory scan
 * found each small value so in the agent, bare, after its container had
 * stopped, and no longer finds it with this. An ArrayBuffer's own store is
 * never moved, so fill(0) reaches the only copy.
 */
function offHeapBuffer(length: number): Buffer {
  return Buffer.from(new ArrayBuffer(length));
}

export class SecretVersion implements SecretVersionInfo {
  readonly name: string;
  readonly version: number;
  readonly createdAt: Date;
  readonly mtime: Date;
  readonly size: number;
  readonly secretId: string;
  readonly #sealer: Sealer;
  readonly #chunks: Buffer[];

  /** Seals `plaintext`; the caller still owns (and should zero) its buffer. */
  constructor(sealer: Sealer, info: Omit<SecretVersionInfo, 'size'>, plaintext: Uint8Array) {
    this.name = info.name;
    this.version = info.version;
    this.createdAt = info.createdAt;
    this.mtime = info.mtime;
    this.size = plaintext.length;
    this.secretId = info.secretId ?? '';
    this.#sealer = sealer;
    const count = Math.max(1, Math.ceil(plaintext.length / CHUNK_BYTES));
    this.#chunks = [];
    for (let i = 0; i < count; i++) {
      const chunk = plaintext.subarray(i * CHUNK_BYTES, Math.min((i + 1) * CHUNK_BYTES, plaintext.length));
      this.#chunks.push(sealer.seal(chunk, this.#aad(i, count)));
    }
  }

  /**
   * Up to `length` bytes from `position` (fewer at the end, none past it), in a
   * fresh buffer that the caller should zero once it has copied them on.
   */
  read(position: number, length: number): Buffer {
    if (!Number.isSafeInteger(position) || position < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new RangeError(`bad read of ${this.name}: position ${position}, length ${length}`);
    }
    const end = Math.min(this.size, position + length);
    if (position >= end) return Buffer.alloc(0);
    const out = offHeapBuffer(end - position);
    const count = this.#chunks.length;
    for (let i = Math.floor(position / CHUNK_BYTES); i * CHUNK_BYTES < end; i++) {
      const plain = this.#sealer.open(this.#chunks[i]!, this.#aad(i, count));
      try {
        const chunkStart = i * CHUNK_BYTES;
        const from = Math.max(position, chunkStart) - chunkStart;
        const to = Math.min(end, chunkStart + plain.length) - chunkStart;
        plain.copy(out, chunkStart + from - position, from, to);
      } finally {
        plain.fill(0);
      }
    }
    return out;
  }

  /** The whole value; the caller should zero it when done. */
  readAll(): Buffer {
    return this.read(0, this.size);
  }

  info(): SecretVersionInfo {
    return { name: this.name, version: this.version, createdAt: this.createdAt, mtime: this.mtime, size: this.size };
  }

  // Chunk index and count in the AAD: a chunk cannot be moved, dropped or
  // shared between versions without failing authentication.
  #aad(index: number, count: number): Buffer {
    return Buffer.from(`hush-agent\0${this.name}\0${this.version}\0${index}\0${count}`);
  }

  toJSON(): SecretVersionInfo {
    return this.info();
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `SecretVersion(${this.name} v${this.version}, ${this.size} bytes, sealed)`;
  }
}
