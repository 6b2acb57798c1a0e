/**
 * Opens the store: backend, keyring, secrets. The backend is the embedded
 * engine in the data directory, or (`etcd`) a key prefix of an etcd cluster,
 * shared by every replica; the data directory then holds only this
 * replica's key file. With a key file the storage is verified here; an
 * autolocked store comes back locked, its backend serving nothing until
 * `keyring.unlock` has verified it.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { templateReferences } from '../acl/index.js';
import { log } from '../log/index.js';
import { AdminCertStore } from './admin-certs.js';
import { AuditLog } from './audit-log.js';
import type { Backend } from './backend.js';
import { CaRecords } from './ca-records.js';
import { ChangeFeed } from './change-feed.js';
import { EmbeddedBackend } from './embedded.js';
import { EtcdBackend, type EtcdOptions } from './etcd.js';
import { Envelope } from './envelope.js';
import { rotateKek } from './kek-rotation.js';
import { Keyring } from './keyring.js';
import { NodeStore } from './nodes.js';
import { SecretStore, type SecretsOptions } from './secrets.js';
import { ServiceStore } from './services.js';
import { StackStore } from './stacks.js';
import { loadSodium } from './sodium.js';

export interface OpenStoreOptions extends SecretsOptions {
  dataDir: string;
  /** Keep everything shared in etcd instead of the embedded engine in `dataDir`. */
  etcd?: EtcdOptions;
  autolock?: boolean;
  snapshotAfterBytes?: number;
}

export interface OpenedStore {
  backend: Backend;
  keyring: Keyring;
  secrets: SecretStore;
  services: ServiceStore;
  nodes: NodeStore;
  adminCerts: AdminCertStore;
  /** Compose projects: deploy, list, remove (one transaction each). */
  stacks: StackStore;
  /** Where the cluster CA is kept (certificate, sealed key). */
  ca: CaRecords;
  /**
   * The same records read without a round trip per read, for pushing to
   * agents: on etcd from the copy its watch keeps current (etcd.ts
   * `watchedReads`: this replica's own commits and every change its
   * listeners were told of), on the embedded engine the engine itself.
   * Its backend's revision is the one those reads are at.
   */
  watched: { backend: Backend; nodes: NodeStore; services: ServiceStore; secrets: SecretStore };
  /** What each durable commit changed, decoded (the dispatcher's input). */
  changes: ChangeFeed;
  /** The chained, keyed audit log of every change and refusal. */
  audit: AuditLog;
  /** Replaces the KEK: every data key re-wrapped, with the new keyring, in one commit (kek-rotation.ts). */
  rotateKek(): Promise<{ term: number; secrets: number }>;
  /** Set when this start created an autolocked store: show it once. */
  newUnlockKey?: string;
}

export async function openStore(options: OpenStoreOptions): Promise<OpenedStore> {
  const sodium = await loadSodium();
  // Reads nothing yet: the keyring finds its sealed record, and the engine serves only once the key has verified the log.
  // With etcd, the data directory holds this replica's own files only (the key file): make it, private.
  if (options.etcd) await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const backend = options.etcd
    ? EtcdBackend.at(options.etcd)
    : EmbeddedBackend.at({
        dir: options.dataDir,
        snapshotAfterBytes: options.snapshotAfterBytes,
        onTornTail: (file, bytes) => log.warn({ file, bytes }, 'cut off a torn tail of the write-ahead log (a write interrupted by a crash, never acknowledged)'),
        onUpgrade: (revision) => log.info({ dataDir: options.dataDir, revision }, 'rewrote the data directory with a keyed log (it was written before the log was keyed)'),
      });
  let opened: Awaited<ReturnType<typeof Keyring.open>>;
  try {
    opened = await Keyring.open(sodium, backend, { keyFile: join(options.dataDir, 'master.key'), autolock: options.autolock ?? false });
  } catch (err) {
    await backend.close();
    throw err;
  }
  const { keyring, newUnlockKey } = opened;
  const envelope = new Envelope(sodium);
  const secrets = new SecretStore(backend, keyring, envelope, options);
  // A template grant is checked against what the template references: its latest version, read (and parsed) here only.
  const services = new ServiceStore(backend, async (name) => {
    const { data } = await secrets.reveal(name);
    try {
      return templateReferences(Buffer.from(data).toString('utf8'), name);
    } finally {
      data.fill(0);
    }
  });
  const nodes = new NodeStore(backend);
  const watchedBackend = backend instanceof EtcdBackend ? backend.watchedReads() : backend;
  const watched = watchedBackend === backend
    ? { backend, nodes, services, secrets }
    : { backend: watchedBackend, nodes: new NodeStore(watchedBackend), services: new ServiceStore(watchedBackend), secrets: new SecretStore(watchedBackend, keyring, envelope, options) };
  const changes = new ChangeFeed(backend);
  // Replicas on shared storage: a KEK rotation through another replica is taken from the watch, so this one
  // opens the re-wrapped values and seals under the new KEK (a write with the old keyring would be refused).
  if (options.etcd) {
    changes.subscribe((batch) => {
      if (batch.changes.some((c) => c.kind === 'keyring')) keyring.reload().catch((err: unknown) => log.error({ err: (err as Error).message }, 'could not reload the keyring after a KEK rotation; the next write or read that needs it tries again'));
    });
  }
  const adminCerts = new AdminCertStore(backend, changes);
  // An autolocked store reads nothing before its unlock has verified the log: these run then.
  await keyring.whenReadable(async () => {
    const migrated = await nodes.migrateJoinLabels();
    if (migrated > 0) log.warn({ nodes: migrated }, 'moved the labels nodes reported at join to engine labels: they were self-reported; set node labels with `hush node label`');
    const uses = await services.migrateSecretUses();
    if (uses > 0) log.info({ keys: uses }, 'recorded which services use which secrets (data written before uses were recorded)');
    await adminCerts.load();
  });
  return {
    backend,
    keyring,
    secrets,
    services,
    nodes,
    adminCerts,
    stacks: new StackStore(backend, secrets, services),
    ca: new CaRecords(backend, secrets),
    watched,
    changes,
    audit: new AuditLog(backend, keyring),
    rotateKek: () => rotateKek(backend, keyring, envelope),
    newUnlockKey,
  };
}
