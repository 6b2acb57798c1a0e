/**
 * `hush store migrate`: copies an embedded store (a data directory) into an
 * empty etcd prefix, so replicas can run on it. Everything is copied as it is
 * stored (sealed records, the sealed keyring, the CA with its sealed key,
 * services, nodes, admin certificate records, use keys): the same key opens
 * both, nothing is decrypted, and the values are tagged for etcd with the
 * store's own log key.
 *
 * Order matters for a copy cut short: the keyring goes last, so a prefix
 * holding part of a store and no keyring is refused by any replica ("holds
 * records but no keyring") instead of served half-empty; delete the prefix
 * and migrate again. The target must be empty; afterwards a fresh backend
 * verifies every tag and compares every key and value with the source.
 */
import { readdir } from 'node:fs/promises';
import { HushError } from '../errors/index.js';
import type { KvEntry, KvOp } from './backend.js';
import { EtcdBackend, type EtcdOptions } from './etcd.js';
import { KEYRING_KEY, NODE_PREFIX, SECRET_PREFIX, SERVICE_PREFIX } from './keys.js';
import { openStore } from './open.js';

/** etcd takes up to 128 operations and 1.5 MiB per request by default: stay under both. */
const MAX_OPS = 100;
const MAX_BYTES = 1024 * 1024;

export interface MigrateResult {
  keys: number;
  secrets: number;
  services: number;
  nodes: number;
  revision: number;
}

export async function migrateToEtcd(options: { dataDir: string; etcd: EtcdOptions; unlockKey?: string }): Promise<MigrateResult> {
  // Opening an empty directory would make a new store there: refuse first.
  const files = await readdir(options.dataDir).catch(() => [] as string[]);
  if (!files.some((f) => /^(wal-\d+\.log|snapshot-\d+\.json)$/.test(f))) throw new HushError('bad_request', `${options.dataDir} holds no store (no write-ahead log or snapshot)`);
  const source = await openStore({ dataDir: options.dataDir, autolock: false });
  try {
    if (source.keyring.locked) {
      if (!options.unlockKey) throw new HushError('locked', `the store in ${options.dataDir} is autolocked: give its unlock key (--unlock-key-file)`);
      await source.keyring.unlock(options.unlockKey);
    }
    const auth = source.keyring.logAuth();
    const entries = await source.backend.list('');
    if (!entries.some((e) => e.key === KEYRING_KEY)) throw new HushError('bad_request', `${options.dataDir} holds no store (no keyring)`);

    const target = EtcdBackend.at(options.etcd);
    try {
      if ((await target.peek(KEYRING_KEY)).hasData) {
        throw new HushError('conflict', `the etcd prefix ${target.prefix} is not empty: refusing to migrate over it (choose another --etcd-prefix, or delete that prefix if it is a failed migration)`);
      }
      await target.authenticate(auth);
      const ordered = [...entries.filter((e) => e.key !== KEYRING_KEY), ...entries.filter((e) => e.key === KEYRING_KEY)];
      for (const batch of batches(ordered)) {
        // Each key must still be absent: a replica or another migration writing meanwhile makes this fail, not mix.
        await target.commit({ conditions: batch.map((e) => ({ key: e.key, modRevision: 0 })), ops: batch.map((e): KvOp => ({ type: 'put', key: e.key, value: e.value })) });
      }
    } finally {
      await target.close();
    }

    // Verify with a fresh connection: every tag checks out, every key and value is the source's.
    const check = await EtcdBackend.open({ ...options.etcd, auth });
    try {
      const copied = new Map((await check.list('')).map((e) => [e.key, e.value]));
      const missing = entries.filter((e) => copied.get(e.key) !== e.value);
      if (missing.length > 0 || copied.size !== entries.length) {
        throw new HushError('internal', `verification failed: ${missing.length} keys differ or are missing (first: ${missing[0]?.key ?? '-'}), ${copied.size} keys in etcd for ${entries.length} in the source`);
      }
      const count = (prefix: string) => entries.filter((e) => e.key.startsWith(prefix)).length;
      return { keys: entries.length, secrets: count(SECRET_PREFIX), services: count(SERVICE_PREFIX), nodes: count(NODE_PREFIX), revision: check.revision() };
    } finally {
      await check.close();
    }
  } finally {
    await source.backend.close();
  }
}

function* batches(entries: KvEntry[]): Generator<KvEntry[]> {
  let batch: KvEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = entry.key.length + Buffer.byteLength(entry.value) + 64;
    if (batch.length > 0 && (batch.length >= MAX_OPS || bytes + size > MAX_BYTES)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(entry);
    bytes += size;
  }
  if (batch.length > 0) yield batch;
}
