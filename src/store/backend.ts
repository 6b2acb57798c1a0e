/**
 * The storage interface under the store: a small revisioned key-value store with
 * etcd's semantics, so the embedded file engine and an etcd backend are
 * interchangeable. Every commit gets the next revision; a transaction applies
 * all its operations or none; conditions compare a key's modRevision (0 means
 * "must not exist") against the latest state.
 */
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
  /** Called after each durable commit, in revision order. Returns an unsubscribe function. */
  watch(listener: (event: KvEvent) => void): () => void;
  close(): Promise<void>;
}

/** A transaction's condition did not hold: someone else changed the key first. */
export class ConflictError extends Error {
  constructor(readonly key: string) {
    super(`conflicting change to ${key}`);
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
