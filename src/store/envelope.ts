/**
 * Envelope encryption of secret versions.
 *
 * Each version is sealed with XChaCha20-Poly1305 (IETF) under a fresh random
 * data key; the data key is sealed under the key-encryption key (KEK) of the
 * current key term. Both seals use the same associated data, which binds the
 * secret's id, name and version: a ciphertext moved to another secret, renamed
 * or replayed as another version fails to open.
 */
import { randomFillSync } from 'node:crypto';
import type { Sodium } from './sodium.js';

const KEY_BYTES = 32;
const NONCE_BYTES = 24;

export interface SealedValue {
  /** Key term whose KEK wraps the data key. */
  term: number;
  nonce: string;
  wrappedKey: string;
  ciphertext: string;
}

export interface Binding {
  id: string;
  name: string;
  version: number;
}

export function bindingAad({ id, name, version }: Binding): Uint8Array {
  return new TextEncoder().encode(`hush/secret/v1\0${id}\0${name}\0${version}`);
}

export class Envelope {
  private readonly random = new RandomPool();

  constructor(private readonly sodium: Sodium) {}

  seal(plaintext: Uint8Array, binding: Binding, kek: Uint8Array, term: number): SealedValue {
    const s = this.sodium;
    const aad = bindingAad(binding);
    // All the randomness of one seal in one draw: libsodium.js draws it 4 bytes
    // at a time, which measured as 40% of the store's CPU per write.
    const random = this.random.take(KEY_BYTES + 2 * NONCE_BYTES);
    const dataKey = random.subarray(0, KEY_BYTES);
    try {
      const nonce = random.slice(KEY_BYTES, KEY_BYTES + NONCE_BYTES);
      const ciphertext = s.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, null, nonce, dataKey);
      return { term, nonce: b64(nonce), wrappedKey: this.wrapKey(dataKey, aad, kek, random.slice(KEY_BYTES + NONCE_BYTES)), ciphertext: b64(ciphertext) };
    } finally {
      s.memzero(random);
    }
  }

  /** Throws if the record was edited, moved, or sealed under another KEK. */
  open(sealed: SealedValue, binding: Binding, kek: Uint8Array): Uint8Array {
    const s = this.sodium;
    const aad = bindingAad(binding);
    const dataKey = this.unwrapKey(sealed.wrappedKey, aad, kek);
    try {
      return s.crypto_aead_xchacha20poly1305_ietf_decrypt(null, unb64(sealed.ciphertext), aad, unb64(sealed.nonce), dataKey);
    } finally {
      s.memzero(dataKey);
    }
  }

  /** Re-wraps the data key under another KEK; the ciphertext itself is untouched. */
  rewrap(sealed: SealedValue, binding: Binding, oldKek: Uint8Array, newKek: Uint8Array, newTerm: number): SealedValue {
    const aad = bindingAad(binding);
    const dataKey = this.unwrapKey(sealed.wrappedKey, aad, oldKek);
    try {
      return { ...sealed, term: newTerm, wrappedKey: this.wrapKey(dataKey, aad, newKek, this.random.take(NONCE_BYTES)) };
    } finally {
      this.sodium.memzero(dataKey);
    }
  }

  private wrapKey(dataKey: Uint8Array, aad: Uint8Array, kek: Uint8Array, nonce: Uint8Array): string {
    const s = this.sodium;
    const wrapped = s.crypto_aead_xchacha20poly1305_ietf_encrypt(dataKey, aad, null, nonce, kek);
    return b64(concat(nonce, wrapped));
  }

  private unwrapKey(wrappedKey: string, aad: Uint8Array, kek: Uint8Array): Uint8Array {
    const s = this.sodium;
    const raw = unb64(wrappedKey);
    const n = NONCE_BYTES;
    return s.crypto_aead_xchacha20poly1305_ietf_decrypt(null, raw.subarray(n), aad, raw.subarray(0, n), kek);
  }
}

export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
export const unb64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * Random bytes from node:crypto, drawn 4 KiB at a time: a randomFillSync call
 * has a fixed cost (2 µs alone, ~10 µs measured in the busy store: a third of
 * a seal) and 4 KiB costs about twice 80 bytes. Each draw is copied out and
 * wiped from the pool at once, so the pool holds only bytes no one has used.
 */
class RandomPool {
  private pool = new Uint8Array(4096);
  private offset = this.pool.length;

  take(n: number): Uint8Array {
    if (n > this.pool.length) return randomFillSync(new Uint8Array(n));
    if (this.offset + n > this.pool.length) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    const out = this.pool.slice(this.offset, this.offset + n);
    this.pool.fill(0, this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
}
