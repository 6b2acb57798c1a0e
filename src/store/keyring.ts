/**
 * The key hierarchy above the data keys:
 *
 *   root key ──seals──▶ keyring { active term, KEK per term } ──wraps──▶ data keys
 *
 * The root key comes from a 0600 key file in the data directory or, with
 * autolock, from an unlock key through Argon2id; the unlock key is shown once
 * and never stored, so after a restart the store stays locked until someone
 * supplies it. The keyring itself is an ordinary (sealed) record in the
 * backend, so a KEK rotation commits the new keyring and every re-wrapped data
 * key in one atomic transaction: a crash leaves either all old or all new.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { HushError } from '../errors/index.js';
import type { Backend } from './backend.js';
import { b64, unb64 } from './envelope.js';
import { writeFileAtomic } from '../files/index.js';
import type { Sodium } from './sodium.js';

export const KEYRING_KEY = 'meta/keyring';
const KEYRING_AAD = new TextEncoder().encode('hush/keyring/v1');
const UNLOCK_KEY_PREFIX = 'HUSHKEY-1-';

interface KeyringRecord {
  format: 1;
  root: 'file' | 'argon2id';
  salt?: string;
  opslimit?: number;
  memlimit?: number;
  nonce: string;
  ciphertext: string;
}

interface KeyringContents {
  active: number;
  terms: Record<string, string>;
}

export interface KeyringOptions {
  /** Path of the root key file (used unless the keyring was created with autolock). */
  keyFile: string;
  /** Create a new store with autolock (ignored for an existing store: the stored keyring decides). */
  autolock: boolean;
}

export class Keyring {
  private terms = new Map<number, Uint8Array>();
  private activeTerm = 0;
  private record: KeyringRecord | undefined;
  private modRevision = 0;
  private unlockWaiters: (() => void)[] = [];
  /** Kept (in memory only) to seal the next keyring on rotation. */
  private currentRoot: Uint8Array | undefined;

  private constructor(
    private readonly sodium: Sodium,
    private readonly backend: Backend,
  ) {}

  /**
   * Loads the keyring, creating it on first start. Returns the new unlock key
   * when one was just made (print it once; it is not kept anywhere).
   */
  static async open(sodium: Sodium, backend: Backend, options: KeyringOptions): Promise<{ keyring: Keyring; newUnlockKey?: string }> {
    const keyring = new Keyring(sodium, backend);
    const entry = await backend.get(KEYRING_KEY);
    if (entry) {
      keyring.record = JSON.parse(entry.value) as KeyringRecord;
      keyring.modRevision = entry.modRevision;
      if (keyring.record.root === 'file') keyring.openWith(await readKeyFile(options.keyFile));
      return { keyring };
    }
    return keyring.create(options);
  }

  get locked(): boolean {
    return this.activeTerm === 0;
  }

  get autolock(): boolean {
    return this.record?.root === 'argon2id';
  }

  get term(): number {
    return this.activeTerm;
  }

  /** Unlocks an autolocked store. A wrong key changes nothing and is refused. */
  unlock(unlockKey: string): void {
    if (!this.locked) return;
    if (!this.autolock || !this.record) throw new HushError('bad_request', 'this store is not autolocked');
    if (!unlockKey.trim().startsWith(UNLOCK_KEY_PREFIX)) throw new HushError('forbidden', `not an unlock key (they start with ${UNLOCK_KEY_PREFIX})`);
    this.openWith(this.deriveRoot(unlockKey.trim(), this.record));
  }

  /** Resolves once the store is unlocked (at once if it already is). */
  whenUnlocked(): Promise<void> {
    if (!this.locked) return Promise.resolve();
    return new Promise((resolve) => this.unlockWaiters.push(resolve));
  }

  kek(term: number): Uint8Array {
    this.assertUnlocked();
    const kek = this.terms.get(term);
    if (!kek) throw new HushError('internal', `key term ${term} is not in the keyring`);
    return kek;
  }

  activeKek(): { term: number; kek: Uint8Array } {
    this.assertUnlocked();
    return { term: this.activeTerm, kek: this.kek(this.activeTerm) };
  }

  assertUnlocked(): void {
    if (this.locked) throw new HushError('locked', 'the store is locked; run `hush unlock` and paste the unlock key');
  }

  /** A commit condition that fails if the keyring changed (a KEK rotation) since it was loaded. */
  condition(): { key: string; modRevision: number } {
    return { key: KEYRING_KEY, modRevision: this.modRevision };
  }

  /**
   * Prepares a rotation: a new KEK and the keyring record that holds only it.
   * The caller commits the record together with every data key re-wrapped,
   * conditioned on the keyring not having changed, then calls `adopt`.
   */
  prepareRotation(): { term: number; kek: Uint8Array; op: { key: string; value: string }; condition: { key: string; modRevision: number } } {
    this.assertUnlocked();
    const term = Math.max(...this.terms.keys()) + 1;
    const kek = this.sodium.crypto_aead_xchacha20poly1305_ietf_keygen();
    const value = JSON.stringify(this.seal({ active: term, terms: { [term]: b64(kek) } }, this.currentRoot!, this.record!));
    return { term, kek, op: { key: KEYRING_KEY, value }, condition: this.condition() };
  }

  adopt(term: number, kek: Uint8Array, value: string, modRevision: number): void {
    for (const old of this.terms.values()) this.sodium.memzero(old);
    this.terms = new Map([[term, kek]]);
    this.activeTerm = term;
    this.record = JSON.parse(value) as KeyringRecord;
    this.modRevision = modRevision;
  }

  private async create(options: KeyringOptions): Promise<{ keyring: Keyring; newUnlockKey?: string }> {
    const s = this.sodium;
    let root: Uint8Array;
    let newUnlockKey: string | undefined;
    let header: KeyringRecord;
    if (options.autolock) {
      newUnlockKey = UNLOCK_KEY_PREFIX + randomBytes(32).toString('base64url');
      header = {
        format: 1,
        root: 'argon2id',
        salt: b64(s.randombytes_buf(s.crypto_pwhash_SALTBYTES)),
        opslimit: s.crypto_pwhash_OPSLIMIT_INTERACTIVE,
        memlimit: s.crypto_pwhash_MEMLIMIT_INTERACTIVE,
        nonce: '',
        ciphertext: '',
      };
      root = this.deriveRoot(newUnlockKey, header);
    } else {
      root = s.crypto_aead_xchacha20poly1305_ietf_keygen();
      await writeFileAtomic(options.keyFile, b64(root) + '\n', 0o600);
      header = { format: 1, root: 'file', nonce: '', ciphertext: '' };
    }
    const kek = s.crypto_aead_xchacha20poly1305_ietf_keygen();
    const record = this.seal({ active: 1, terms: { 1: b64(kek) } }, root, header);
    const value = JSON.stringify(record);
    const revision = await this.backend.commit({ conditions: [{ key: KEYRING_KEY, modRevision: 0 }], ops: [{ type: 'put', key: KEYRING_KEY, value }] });
    this.record = record;
    this.modRevision = revision;
    this.openWith(root);
    return { keyring: this, newUnlockKey };
  }

  private deriveRoot(unlockKey: string, record: KeyringRecord): Uint8Array {
    const s = this.sodium;
    return s.crypto_pwhash(32, unlockKey, unb64(record.salt!), record.opslimit!, record.memlimit!, s.crypto_pwhash_ALG_ARGON2ID13);
  }

  private seal(contents: KeyringContents, root: Uint8Array, header: KeyringRecord): KeyringRecord {
    const s = this.sodium;
    const nonce = s.randombytes_buf(s.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    const ciphertext = s.crypto_aead_xchacha20poly1305_ietf_encrypt(JSON.stringify(contents), KEYRING_AAD, null, nonce, root);
    return { ...header, nonce: b64(nonce), ciphertext: b64(ciphertext) };
  }

  private openWith(root: Uint8Array): void {
    const s = this.sodium;
    const record = this.record!;
    let plain: Uint8Array;
    try {
      plain = s.crypto_aead_xchacha20poly1305_ietf_decrypt(null, unb64(record.ciphertext), KEYRING_AAD, unb64(record.nonce), root);
    } catch {
      throw record.root === 'argon2id'
        ? new HushError('forbidden', 'wrong unlock key')
        : new HushError('internal', 'the key file does not open this store\'s keyring (was master.key replaced?)');
    }
    const contents = JSON.parse(new TextDecoder().decode(plain)) as KeyringContents;
    s.memzero(plain);
    this.terms = new Map(Object.entries(contents.terms).map(([term, key]) => [Number(term), unb64(key)]));
    this.activeTerm = contents.active;
    this.currentRoot = root;
    for (const wake of this.unlockWaiters.splice(0)) wake();
  }
}

async function readKeyFile(path: string): Promise<Uint8Array> {
  try {
    return unb64((await readFile(path, 'utf8')).trim());
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new HushError('internal', `key file ${path} is missing: the store cannot decrypt its data without it; restore it from your backup`);
    throw err;
  }
}
