/**
 * The `Backend` implementations the conformance suite runs against
 * (backend-conformance.ts). The etcd target's context is the endpoints of a
 * real cluster (started by the test file, `useEtcdEndpoints`) and a fresh key
 * prefix per test; `destroy` deletes the prefix.
 */
import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { deriveLogAuth, EmbeddedBackend, EtcdBackend, loadSodium, type Backend } from '../../src/store/index.js';
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

interface EtcdContext {
  endpoints: string[];
  prefix: string;
}

let etcdEndpoints: string[] | undefined;
/** The cluster the etcd target makes its prefixes on (set by the test file once it has started one). */
export function useEtcdEndpoints(endpoints: string[]): void {
  etcdEndpoints = endpoints;
}

/** The etcd backend, each test under its own prefix of one real cluster. */
export const etcdTarget: ConformanceTarget<EtcdContext> = {
  create: async () => {
    if (!etcdEndpoints) throw new Error('no etcd cluster: call useEtcdEndpoints() in a before hook');
    return { endpoints: etcdEndpoints, prefix: `conformance/${randomBytes(6).toString('hex')}/` };
  },
  open: async (context) => EtcdBackend.open({ endpoints: context.endpoints, prefix: context.prefix, auth: deriveLogAuth(await loadSodium(), LOG_ROOT_KEY) }),
  destroy: async (context) => {
    const client = new Etcd3({ hosts: context.endpoints });
    try {
      await client.delete().prefix(context.prefix);
    } finally {
      client.close();
    }
  },
  module: { url: import.meta.url, exportName: 'etcdTarget' },
};

/**
 * The etcd backend read through the copy its watch keeps current
 * (`watchedReads`, what the dispatcher reads): the same contract, read-your-writes
 * included, without a round trip per read.
 */
export const etcdWatchedTarget: ConformanceTarget<EtcdContext> = {
  ...etcdTarget,
  open: async (context) => ((await etcdTarget.open(context)) as EtcdBackend).watchedReads(),
  module: { url: import.meta.url, exportName: 'etcdWatchedTarget' },
};
