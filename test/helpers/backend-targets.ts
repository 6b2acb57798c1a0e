/**
 * The `Backend` implementations the conformance suite runs against
 * (backend-conformance.ts). An etcd target goes here too: its context an
 * endpoint and a key prefix, `destroy` deleting the prefix.
 */
import { deriveLogAuth, EmbeddedBackend, loadSodium, type Backend } from '../../src/store/index.js';
import type { ConformanceTarget } from './backend-conformance.js';
import { removeDir, tempDir } from './tmp.js';

interface EmbeddedContext {
  dir: string;
  snapshotAfterBytes?: number;
}

/** The log key the embedded targets authenticate with (any fixed key: the suite tests storage, not keys). */
const LOG_ROOT_KEY = Buffer.alloc(32, 7);

async function openEmbedded(context: EmbeddedContext): Promise<Backend> {
  return EmbeddedBackend.open({ dir: context.dir, snapshotAfterBytes: context.snapshotAfterBytes, auth: deriveLogAuth(await loadSodium(), LOG_ROOT_KEY) });
}

/** The embedded engine as the store runs it: the log only (its snapshot threshold is 64 MiB). */
export const embeddedTarget: ConformanceTarget<EmbeddedContext> = {
  create: async () => ({ dir: await tempDir('hush-conformance-') }),
  open: openEmbedded,
  destroy: (context) => removeDir(context.dir),
  module: { url: import.meta.url, exportName: 'embeddedTarget' },
};

/** The embedded engine snapshotting every 4 KiB of log: reads and recovery go through snapshot plus log. */
export const embeddedSnapshottingTarget: ConformanceTarget<EmbeddedContext> = {
  create: async () => ({ dir: await tempDir('hush-conformance-'), snapshotAfterBytes: 4096 }),
  open: openEmbedded,
  destroy: (context) => removeDir(context.dir),
  module: { url: import.meta.url, exportName: 'embeddedSnapshottingTarget' },
};
