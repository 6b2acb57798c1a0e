/**
 * The per-process key that keeps secret values encrypted while the agent holds
 * them, so a core dump, a swapped page or a heap snapshot shows ciphertext.
 *
 * ChaCha20-Poly1305 from node:crypto (OpenSSL), not libsodium: libsodium.js
 * copies plaintext into its WebAssembly heap and frees it without wiping, so
 * every decrypt would leave a copy of the value in process memory (checked:
 * a marker survives sodium.memzero of the returned buffer). OpenSSL works in
 * our own buffers and cleanses its state. Nonces are a counter under a key
 * that lives only as long as this process, so they never repeat.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const ALGORITHM = 'chacha20-poly1305';
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export class Sealer {
  #key: Buffer;
  #counter = 0n;

  constructor() {
    this.#key = randomBytes(KEY_BYTES);
  }

  /** nonce || ciphertext || tag. `aad` binds the ciphertext to where it belongs. */
  seal(plaintext: Uint8Array, aad: Buffer): Buffer {
    const nonce = Buffer.alloc(NONCE_BYTES);
    nonce.writeBigUInt64BE(++this.#counter, NONCE_BYTES - 8);
    const cipher = createCipheriv(ALGORITHM, this.#usableKey(), nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad, { plaintextLength: plaintext.length });
    const body = cipher.update(plaintext);
    const final = cipher.final();
    return Buffer.concat([nonce, body, final, cipher.getAuthTag()]);
  }

  /** The plaintext in a fresh buffer the caller must zero when done. Throws if the box was altered or moved. */
  open(sealed: Buffer, aad: Buffer): Buffer {
    const nonce = sealed.subarray(0, NONCE_BYTES);
    const tag = sealed.subarray(sealed.length - TAG_BYTES);
    const decipher = createDecipheriv(ALGORITHM, this.#usableKey(), nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad, { plaintextLength: sealed.length - NONCE_BYTES - TAG_BYTES });
    decipher.setAuthTag(tag);
    const plaintext = decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES));
    try {
      decipher.final();
    } catch (err) {
      plaintext.fill(0);
      throw new Error(`sealed value failed authentication: ${(err as Error).message}`, { cause: err });
    }
    return plaintext;
  }

  /** Wipes the key: everything sealed under it becomes unreadable. */
  destroy(): void {
    this.#key.fill(0);
    this.#key = Buffer.alloc(0);
  }

  #usableKey(): Buffer {
    if (this.#key.length !== KEY_BYTES) throw new Error('the agent cache has been destroyed');
    return this.#key;
  }

  /** Nothing of the key in logs, util.inspect or JSON. */
  toJSON(): string {
    return '[Sealer]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[Sealer]';
  }
}
