/**
 * The key hierarchy above the data keys:
 *
 *   root key ──seals──▶ keyring { active term, KEK per term } ──wraps──▶ data keys
 *       └──derives──▶ log key: authenticates every log record and snapshot (log-auth.ts)
 *
 * The root key comes from a 0600 key file in the data directory or, with
 * autolock, from an unlock key through Argon2id; the unlock key is shown once
 * and never stored, so after a restart the store stays locked until someone
 * supplies it. The keyring itself is an ordinary (sealed) record in the
 * backend, so a KEK rotation commits the new keyring and every re-wrapped data
 * key in one atomic transaction: a crash leaves either all old or all new.
 *
 * Opening, in this order, trusting only what it has verified:
 *   1. peek: the sealed keyring as the files hold it, not yet authenticated.
 *      Its Argon2id costs are bounded before use (a tampered keyring must not
 *      make unlock run for hours or take gigabytes).
 *   2. the root key (key file, or unlock key + Argon2id) must open that seal:
 *      the AEAD proves the root key right.
 *   3. the backend verifies every record and snapshot with the log key, and
 *      only then serves anything; from here the keyring used is the one the
 *      verified log holds.
 * The sealed keyring also says that the log is keyed, so a data directory
 * swapped for unkeyed files (the format before the log was keyed) is refused
 * instead of "upgraded"; a directory really written before then is upgraded
 * once, and its keyring marked.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import { HushError } from '../errors/index.js';
import { ConflictError, CorruptionError, type KeyedBackend, type PeekedValue } from './backend.js';
import { b64, unb64 } from './envelope.js';
import { writeFileAtomic } from '../files/index.js';
import { SharedExclusiveGate } from './gate.js';
import { KEYRING_KEY } from './keys.js';
import { deriveAuditMac, deriveLogAuth, type LogAuth } from './log-auth.js';
import type { Sodium } from './sodium.js';
import { log } from '../log/index.js';

/**
 * A value names a key term this keyring does not hold. A newer term than
 * any held: another replica on shared storage rotated the KEK and this one
 * has not reloaded yet ('conflict': try again). An older one: the record was
 * read just before a rotation re-wrapped it, or it is damaged ('internal').
 * Either way withActiveKek and withCurrentKeys reload and run the work again.
 */
class MissingTermError extends HushError {
  constructor(term: number, newest: number) {
    super(
      term > newest ? 'conflict' : 'internal',
      term > newest ? `key term ${term} is newer than this store's keyring (term ${newest}): the KEK was rotated by another replica; try again` : `key term ${term} is not in the keyring`,
    );
  }
}

/**
 * The keyring this process holds may be older than the stored one: a commit
 * conditioned on it failed, or a value names a term it does not hold.
 */
export function isKeyringConflict(err: unknown): boolean {
  return err instanceof MissingTermError || (err instanceof ConflictError && err.key === KEYRING_KEY);
}

/**
 * Times a piece of work is run again after the keyring it used turned out
 * stale and was reloaded. A KEK rotation is two commits, each of which makes
 * a write in flight stale: 8 lets a write through another replica outlast
 * four rotations in a row (3 did not outlast three on a loaded machine,
 * test/unit/keyring-replicas.test.ts); past that the caller gets a 409.
 */
const STALE_KEYRING_RETRIES = 8;

const KEYRING_AAD = new TextEncoder().encode('hush/keyring/v1');
const UNLOCK_KEY_PREFIX = 'HUSHKEY-1-';
const ROOT_KEY_BYTES = 32;

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
  /** Set once the log is keyed: from then on, unkeyed files in the data directory are refused. */
  log?: 'keyed';
}

export interface KeyringOptions {
  /** Path of the root key file (used unless the keyring was created with autolock). */
  keyFile: string;
  /**
   * Create a new store with autolock. For an existing store the stored
   * keyring decides, except that a store opened by a key file is refused:
   * the operator expects to be asked for the unlock key, and a data
   * directory replaced by someone else's store would not ask.
   */
  autolock: boolean;
}

export class Keyring {
  private terms = new Map<number, Uint8Array>();
  private activeTerm = 0;
  private record: KeyringRecord | undefined;
  private modRevision = 0;
  private unlockWaiters: (() => void)[] = [];
  /** Work on the verified log that must finish before anything waiting for the unlock runs (see whenReadable). */
  private readTasks: (() => Promise<void>)[] = [];
  /** Kept (in memory only) to seal the next keyring on rotation. */
  private currentRoot: Uint8Array | undefined;
  private auditMacOfRoot: ((previous: Buffer, payload: Buffer) => Buffer) | undefined;
  /** Unlock attempts, one at a time: each derives a key and may verify the whole log. */
  private unlocking: Promise<unknown> = Promise.resolve();
  /** Seals under the active KEK (shared) wait for a KEK rotation (exclusive) and vice versa. */
  private readonly kekGate = new SharedExclusiveGate();
  /** Set inside the gate: work in there that meets a stale keyring leaves the reload to the outermost caller (the gate is not re-entrant). */
  private readonly insideGate = new AsyncLocalStorage<true>();
  /** A reload in progress (the watch and a failed commit may both ask at once). */
  private reloading: Promise<boolean> | undefined;

  private constructor(
    private readonly sodium: Sodium,
    private readonly backend: KeyedBackend,
  ) {}

  /**
   * Loads the keyring, creating it on first start. Returns the new unlock key
   * when one was just made (print it once; it is not kept anywhere).
   */
  static async open(sodium: Sodium, backend: KeyedBackend, options: KeyringOptions): Promise<{ keyring: Keyring; newUnlockKey?: string }> {
    const keyring = new Keyring(sodium, backend);
    const peeked = await backend.peek(KEYRING_KEY);
    if (peeked.value !== undefined) {
      keyring.record = parseKeyringRecord(sodium, peeked);
      if (keyring.record.root === 'file') {
        if (options.autolock) throw new HushError('forbidden', 'this store is not autolocked (master.key opens it), but --autolock was given: refusing to start a store that does not ask for its unlock key');
        await keyring.openWith(await readKeyFile(options.keyFile));
      }
      return { keyring };
    }
    if (peeked.hasData) throw new HushError('internal', 'the data directory holds records but no keyring: refusing to make a new key over them');
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

  /**
   * Unlocks an autolocked store: derives the root key, then verifies the log
   * with it before anything is served. A wrong key changes nothing and is
   * refused; so is a log that fails verification (the store stays locked).
   */
  unlock(unlockKey: string): Promise<void> {
    const attempt = this.unlocking.then(async () => {
      if (!this.locked) return;
      if (!this.autolock || !this.record) throw new HushError('bad_request', 'this store is not autolocked');
      if (!unlockKey.trim().startsWith(UNLOCK_KEY_PREFIX)) throw new HushError('forbidden', `not an unlock key (they start with ${UNLOCK_KEY_PREFIX})`);
      try {
        await this.openWith(this.deriveRoot(unlockKey.trim(), this.record));
      } catch (err) {
        // Told to whoever unlocks (not hidden as an internal error): which file, which offset.
        if (err instanceof CorruptionError) throw new HushError('internal', err.message);
        throw err;
      }
    });
    this.unlocking = attempt.catch(() => undefined);
    return attempt;
  }

  /**
   * Runs `task` as soon as the log is verified: now if it is, else inside the
   * unlock, before `whenUnlocked` waiters wake. For start-up work that reads
   * records (migrations, caches), which an autolocked store cannot serve yet.
   */
  async whenReadable(task: () => Promise<void>): Promise<void> {
    if (this.locked) this.readTasks.push(task);
    else await task();
  }

  /** Resolves once the store is unlocked (at once if it already is). */
  whenUnlocked(): Promise<void> {
    if (!this.locked) return Promise.resolve();
    return new Promise((resolve) => this.unlockWaiters.push(resolve));
  }

  kek(term: number): Uint8Array {
    this.assertUnlocked();
    const kek = this.terms.get(term);
    if (!kek) throw new MissingTermError(term, Math.max(...this.terms.keys()));
    return kek;
  }

  activeKek(): { term: number; kek: Uint8Array } {
    this.assertUnlocked();
    return { term: this.activeTerm, kek: this.kek(this.activeTerm) };
  }

  /** The log key of this store (to authenticate another copy of its storage: `hush store migrate`). */
  logAuth(): LogAuth {
    this.assertUnlocked();
    return deriveLogAuth(this.sodium, this.currentRoot!);
  }

  /** The MAC that chains the audit log, keyed from the root key (log-auth.ts); only once unlocked. */
  auditMac(): (previous: Buffer, payload: Buffer) => Buffer {
    this.assertUnlocked();
    this.auditMacOfRoot ??= deriveAuditMac(this.sodium, this.currentRoot!);
    return this.auditMacOfRoot;
  }

  assertUnlocked(): void {
    if (this.locked) throw new HushError('locked', 'the store is locked; run `hush unlock` and paste the unlock key');
  }

  /**
   * Runs work that seals under the active KEK. A KEK rotation waits for it to
   * finish, and it waits for a rotation in progress: nothing is sealed under a
   * KEK that is being rotated away.
   */
  withActiveKek<T>(work: () => Promise<T>): Promise<T> {
    return this.retryingStale(() => this.kekGate.shared(() => this.insideGate.run(true, work)));
  }

  /**
   * Runs work that opens values (no seal): if it meets a term newer than
   * this keyring (another replica rotated the KEK), the keyring is reloaded
   * and the work runs again.
   */
  withCurrentKeys<T>(work: () => Promise<T>): Promise<T> {
    return this.retryingStale(work);
  }

  /** Runs a KEK rotation (kek-rotation.ts) once no seal is in progress, and holds new seals until it is done. */
  rotating<T>(work: () => Promise<T>): Promise<T> {
    return this.kekGate.exclusive(() => this.insideGate.run(true, work));
  }

  /**
   * Inside rotating(): the commit found the stored keyring newer than this
   * one. Loads it (no gate: the rotation holds it exclusively already).
   */
  async reloadWithinRotation(): Promise<boolean> {
    return this.loadStored();
  }

  /**
   * Takes the keyring the store holds now, if it is newer than this one
   * (another replica rotated the KEK: shared storage). Waits for seals in
   * progress, as a rotation does, so nothing is sealed under a KEK while the
   * keyring changes under it. Says whether anything changed.
   */
  reload(): Promise<boolean> {
    if (this.locked) return Promise.resolve(false);
    this.reloading ??= this.kekGate.exclusive(() => this.loadStored()).finally(() => (this.reloading = undefined));
    return this.reloading;
  }

  private async retryingStale<T>(run: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await run();
      } catch (err) {
        // Nested inside the gate, a reload would wait for ourselves: the outermost caller reloads and runs it all again.
        if (!isKeyringConflict(err) || attempt >= STALE_KEYRING_RETRIES || this.insideGate.getStore()) throw err;
        // Even when there is nothing newer to load (a reload got here first), the work reads its records again.
        await this.reload();
      }
    }
  }

  /** Reads, verifies and opens the stored keyring; takes it if it is not the one held. Call with the gate held exclusively. */
  private async loadStored(): Promise<boolean> {
    if (this.locked) return false;
    const entry = await this.backend.get(KEYRING_KEY);
    if (!entry || entry.modRevision === this.modRevision) return false;
    const record = parseKeyringRecord(this.sodium, { value: entry.value, hasData: true });
    const contents = this.open(record, this.currentRoot!);
    for (const old of this.terms.values()) this.sodium.memzero(old);
    this.terms = new Map(Object.entries(contents.terms).map(([term, key]) => [Number(term), unb64(key)]));
    this.activeTerm = contents.active;
    this.record = record;
    this.modRevision = entry.modRevision;
    log.info({ term: this.activeTerm, revision: entry.modRevision }, 'reloaded the keyring: the KEK was rotated (by another replica)');
    return true;
  }

  /** A commit condition that fails if the keyring changed (a KEK rotation) since it was loaded. */
  condition(): { key: string; modRevision: number } {
    return { key: KEYRING_KEY, modRevision: this.modRevision };
  }

  /**
   * The first step of a rotation on shared storage (kek-rotation.ts): a
   * keyring record that adds a new term, made active, beside the ones held.
   * Once committed, no replica can commit a value sealed under an older term
   * (every seal is conditioned on the keyring), so the values still to
   * re-wrap are exactly those on record then.
   */
  prepareNewTerm(): { term: number; kek: Uint8Array; op: { key: string; value: string }; condition: { key: string; modRevision: number } } {
    this.assertUnlocked();
    const term = Math.max(...this.terms.keys()) + 1;
    const kek = this.sodium.crypto_aead_xchacha20poly1305_ietf_keygen();
    const terms: Record<string, string> = { [term]: b64(kek) };
    for (const [held, key] of this.terms) terms[held] = b64(key);
    const value = JSON.stringify(this.seal({ active: term, terms, log: 'keyed' }, this.currentRoot!, this.record!));
    return { term, kek, op: { key: KEYRING_KEY, value }, condition: this.condition() };
  }

  adoptNewTerm(term: number, kek: Uint8Array, value: string, modRevision: number): void {
    this.terms.set(term, kek);
    this.activeTerm = term;
    this.record = JSON.parse(value) as KeyringRecord;
    this.modRevision = modRevision;
  }

  /** The last step of a rotation: a keyring record holding the active term only (commit it with every value re-wrapped under it). */
  prepareDropOldTerms(): { op: { key: string; value: string }; condition: { key: string; modRevision: number } } {
    const { term, kek } = this.activeKek();
    const value = JSON.stringify(this.seal({ active: term, terms: { [term]: b64(kek) }, log: 'keyed' }, this.currentRoot!, this.record!));
    return { op: { key: KEYRING_KEY, value }, condition: this.condition() };
  }

  adoptDroppedOldTerms(value: string, modRevision: number): void {
    for (const [term, key] of this.terms) if (term !== this.activeTerm) this.sodium.memzero(key);
    this.terms = new Map([[this.activeTerm, this.terms.get(this.activeTerm)!]]);
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
      header = { format: 1, root: 'file', nonce: '', ciphertext: '' };
    }
    // The files hold no record yet, so there is nothing unkeyed to accept. This also makes the directory.
    await this.backend.authenticate(deriveLogAuth(s, root), { allowUnkeyed: false });
    // A crash before the keyring is committed leaves no record: the next start makes a new key over nothing.
    if (!options.autolock) await writeFileAtomic(options.keyFile, b64(root) + '\n', 0o600);
    const kek = s.crypto_aead_xchacha20poly1305_ietf_keygen();
    const record = this.seal({ active: 1, terms: { 1: b64(kek) }, log: 'keyed' }, root, header);
    try {
      await this.backend.commit({ conditions: [{ key: KEYRING_KEY, modRevision: 0 }], ops: [{ type: 'put', key: KEYRING_KEY, value: JSON.stringify(record) }] });
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      // Shared storage (etcd): another replica made the store's key at the same moment. Ours opens nothing: take it back.
      if (!options.autolock) await unlink(options.keyFile).catch(() => undefined);
      throw new HushError('conflict', 'another store replica created this store\'s keyring at the same moment: copy its key file (master.key) here, or unlock with its unlock key, and start again');
    }
    this.record = record;
    await this.openWith(root);
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

  /** Steps 2 and 3 of opening (see the top of this file); the store is unlocked only if both hold. */
  private async openWith(root: Uint8Array): Promise<void> {
    const peeked = this.open(this.record!, root);
    await this.backend.authenticate(deriveLogAuth(this.sodium, root), { allowUnkeyed: peeked.log !== 'keyed' });
    const entry = await this.backend.get(KEYRING_KEY);
    if (!entry) throw new HushError('internal', 'the verified log holds no keyring');
    let record = parseKeyringRecord(this.sodium, { value: entry.value, hasData: true });
    let contents = this.open(record, root);
    let modRevision = entry.modRevision;
    if (contents.log !== 'keyed') {
      // The first start since the log was keyed (it was just upgraded): say so in the sealed keyring, so unkeyed files are refused from now on.
      contents = { ...contents, log: 'keyed' };
      record = this.seal(contents, root, record);
      modRevision = await this.backend.commit({ conditions: [{ key: KEYRING_KEY, modRevision }], ops: [{ type: 'put', key: KEYRING_KEY, value: JSON.stringify(record) }] });
    }
    // Start-up work on the verified log runs before anything counts the store as unlocked: if a task
    // fails, the store stays locked (not half open, with its waiters never woken) and the next unlock runs them again.
    for (const task of this.readTasks) await task();
    this.readTasks = [];
    this.record = record;
    this.modRevision = modRevision;
    this.terms = new Map(Object.entries(contents.terms).map(([term, key]) => [Number(term), unb64(key)]));
    this.activeTerm = contents.active;
    this.currentRoot = root;
    for (const wake of this.unlockWaiters.splice(0)) wake();
  }

  /** Opens a sealed keyring; failing, the root key is wrong for it. */
  private open(record: KeyringRecord, root: Uint8Array): KeyringContents {
    const s = this.sodium;
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
    return contents;
  }
}

async function readKeyFile(path: string): Promise<Uint8Array> {
  let key: Uint8Array;
  try {
    key = unb64((await readFile(path, 'utf8')).trim());
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new HushError('internal', `key file ${path} is missing: the store cannot decrypt its data without it; restore it from your backup`);
    throw err;
  }
  if (key.length !== ROOT_KEY_BYTES) throw new HushError('internal', `key file ${path} does not hold a ${ROOT_KEY_BYTES}-byte key (base64)`);
  return key;
}

/**
 * Checks a keyring record's shape and bounds its Argon2id costs before
 * anything is derived with them. The bounds run from libsodium's minimum to
 * its "moderate" limits (3 passes, 256 MiB: 1.5 s on the dev VM); this store
 * writes "interactive" ones (2 passes, 64 MiB: 0.27 s).
 */
function parseKeyringRecord(sodium: Sodium, peeked: PeekedValue): KeyringRecord {
  const refuse = (reason: string) => new CorruptionError(peeked.file ?? 'the keyring', peeked.offset ?? 0, `keyring record ${reason}`);
  let record: KeyringRecord;
  try {
    record = JSON.parse(peeked.value!) as KeyringRecord;
  } catch {
    throw refuse('is not valid JSON');
  }
  const isText = (v: unknown) => typeof v === 'string';
  if (typeof record !== 'object' || record === null || record.format !== 1 || !isText(record.nonce) || !isText(record.ciphertext)) throw refuse('is malformed');
  if (record.root === 'file') return record;
  if (record.root !== 'argon2id') throw refuse(`names an unknown root ${JSON.stringify(record.root)}`);
  if (!isText(record.salt) || unb64(record.salt!).length !== sodium.crypto_pwhash_SALTBYTES) throw refuse('has a malformed Argon2id salt');
  const bound = (name: 'opslimit' | 'memlimit', min: number, max: number) => {
    const value = record[name];
    if (!Number.isSafeInteger(value) || value! < min || value! > max) {
      throw refuse(`asks Argon2id for ${name} ${JSON.stringify(value)} (accepted: ${min} to ${max}); refusing to derive a key with it (was the keyring tampered with?)`);
    }
  };
  bound('opslimit', sodium.crypto_pwhash_OPSLIMIT_MIN, sodium.crypto_pwhash_OPSLIMIT_MODERATE);
  bound('memlimit', sodium.crypto_pwhash_MEMLIMIT_MIN, sodium.crypto_pwhash_MEMLIMIT_MODERATE);
  return record;
}
