/**
 * The storage interface under the store: a small revisioned key-value store with
 * etcd's semantics, so the embedded file engine and an etcd backend are
 * interchangeable. Every commit gets the next revision; a transaction applies
 * all its operations or none; conditions compare a key's modRevision (0 means
 * "must not exist") against the latest state.
 */
import { HushError } from '../errors/index.js';
import type { LogAuth } from './log-auth.js';

export interface KvEntry {
  key: string;
  value: string;
  /** Revision of the commit that last wrote this key. */
  modRevision: number;
}

export type KvOp = { type: 'put'; key: string; value: string } | { type: 'delete'; key: string };

export interface KvCondition {
  key: string;
  /** The key's current modRevision must equal this; 0 means the key must be absent. */
  modRevision: number;
}

export interface KvTxn {
  conditions?: KvCondition[];
  ops: KvOp[];
}

export interface KvEvent {
  revision: number;
  ops: KvOp[];
}

export interface Backend {
  /** Reads of committed (durable) state only. */
  get(key: string): Promise<KvEntry | undefined>;
  list(prefix: string): Promise<KvEntry[]>;
  /** Resolves with the commit's revision once it is durable; rejects with ConflictError if a condition fails. */
  commit(txn: KvTxn): Promise<number>;
  /** The revision of the latest durable commit. */
  revision(): number;
  /**
   * Called after each durable commit, in revision order (possibly after the
   * commit's promise resolved: etcd's watch runs behind its acknowledgements).
   * A delete of a key that was absent may be left out of the event.
   * Returns an unsubscribe function.
   */
  watch(listener: (event: KvEvent) => void): () => void;
  close(): Promise<void>;
}

/** One key as the files hold it before they are verified, and where it was read. */
export interface PeekedValue {
  value?: string;
  /** File and offset of the snapshot or record the value came from. */
  file?: string;
  offset?: number;
  /** Whether the files hold any record at all (a new store holds none). */
  hasData: boolean;
}

/**
 * A backend whose files are authenticated with a key derived from the root
 * key (the embedded engine). It serves nothing until `authenticate` has
 * verified every record and snapshot; before that, `peek` reads one key
 * unverified, so that the sealed keyring can be found and opened (its AEAD
 * seal is its own proof) to derive the key.
 */
export interface KeyedBackend extends Backend {
  peek(key: string): Promise<PeekedValue>;
  /**
   * Verifies the files with `auth` and starts serving them. A data directory
   * written before the log was keyed is upgraded (rewritten keyed) when
   * `allowUnkeyed`, and refused otherwise. Resolves with whether it upgraded.
   */
  authenticate(auth: LogAuth, options: { allowUnkeyed: boolean }): Promise<{ upgraded: boolean }>;
  readonly authenticated: boolean;
}

/**
 * A transaction's condition did not hold: someone else changed the key first.
 * A HushError 'conflict' (409), so one that outlasts a caller's retries
 * reaches the client as "try again", not as a 500 (the kill -9 cycles suite
 * saw a 500 from concurrent rotations of one secret).
 */
export class ConflictError extends HushError {
  constructor(readonly key: string) {
    super('conflict', `conflicting change to ${key} by another request at the same time; try again`);
    this.name = 'ConflictError';
  }
}

/** The data on disk is damaged in a way that recovery must not paper over. */
export class CorruptionError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super(`${file}: ${reason} at offset ${offset}; refusing to start. Restore the data directory from a backup (or move the file aside to inspect it).`);
    this.name = 'CorruptionError';
  }
}
