/**
 * The store process: opens the data directory, unlocks if it can, and serves
 * the admin API. Wiring only; the parts live in store/ and api/.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createAdminApp, listenOnUnixSocket } from '../api/index.js';
import { updateHomeConfig } from '../home/index.js';
import { log } from '../log/index.js';
import { openStore, type OpenedStore } from '../store/index.js';

export interface StoreDaemonOptions {
  dataDir: string;
  socket: string;
  home: string;
  autolock?: boolean;
  unlockKeyFile?: string;
  maxValueBytes?: number;
  /** Where to print the one-time unlock key of a new autolocked store. */
  announce?: (text: string) => void;
}

export interface RunningStore {
  store: OpenedStore;
  close(): Promise<void>;
}

export async function startStore(options: StoreDaemonOptions): Promise<RunningStore> {
  const store = await openStore({ dataDir: options.dataDir, autolock: options.autolock, maxValueBytes: options.maxValueBytes });
  const announce = options.announce ?? ((text: string) => process.stdout.write(text));
  if (store.newUnlockKey) {
    announce(
      `This store is autolocked. Its unlock key is shown this once and stored nowhere:\n\n    ${store.newUnlockKey}\n\n` +
        'Keep it safe (a password manager). After a restart, run `hush unlock` and paste it.\n',
    );
  }
  if (store.keyring.locked && options.unlockKeyFile) {
    store.keyring.unlock(await readFile(options.unlockKeyFile, 'utf8'));
  }

  const app = createAdminApp({ backend: store.backend, keyring: store.keyring, secrets: store.secrets, randomBytes: (n) => new Uint8Array(randomBytes(n)) });
  const server = await listenOnUnixSocket(app, options.socket);
  await updateHomeConfig(options.home, { host: `unix://${options.socket}` });
  log.info({ dataDir: options.dataDir, socket: options.socket, revision: store.backend.revision(), locked: store.keyring.locked }, 'store ready');

  return {
    store,
    async close() {
      await closeServer(server);
      await store.backend.close();
    },
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
