/** Opens the embedded store in a data directory: backend, keyring, secrets. */
import { join } from 'node:path';
import { log } from '../log/index.js';
import type { Backend } from './backend.js';
import { EmbeddedBackend } from './embedded.js';
import { Envelope } from './envelope.js';
import { Keyring } from './keyring.js';
import { NodeStore } from './nodes.js';
import { SecretStore, type SecretsOptions } from './secrets.js';
import { ServiceStore } from './services.js';
import { StackStore } from './stacks.js';
import { loadSodium } from './sodium.js';

export interface OpenStoreOptions extends SecretsOptions {
  dataDir: string;
  autolock?: boolean;
  snapshotAfterBytes?: number;
}

export interface OpenedStore {
  backend: Backend;
  keyring: Keyring;
  secrets: SecretStore;
  services: ServiceStore;
  nodes: NodeStore;
  /** Compose projects: deploy, list, remove (one transaction each). */
  stacks: StackStore;
  /** Set when this start created an autolocked store: show it once. */
  newUnlockKey?: string;
}

export async function openStore(options: OpenStoreOptions): Promise<OpenedStore> {
  const sodium = await loadSodium();
  const backend = await EmbeddedBackend.open({
    dir: options.dataDir,
    snapshotAfterBytes: options.snapshotAfterBytes,
    onTornTail: (file, bytes) => log.warn({ file, bytes }, 'cut off a torn tail of the write-ahead log (a write interrupted by a crash, never acknowledged)'),
  });
  const { keyring, newUnlockKey } = await Keyring.open(sodium, backend, { keyFile: join(options.dataDir, 'master.key'), autolock: options.autolock ?? false });
  const secrets = new SecretStore(backend, keyring, new Envelope(sodium), options);
  const nodes = new NodeStore(backend);
  const migrated = await nodes.migrateJoinLabels();
  if (migrated > 0) log.warn({ nodes: migrated }, 'moved the labels nodes reported at join to engine labels: they were self-reported; set node labels with `hush node label`');
  const services = new ServiceStore(backend);
  return { backend, keyring, secrets, services, nodes, stacks: new StackStore(backend, secrets, services), newUnlockKey };
}
