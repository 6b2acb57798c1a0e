/**
 * The fallback implementation: fuse-native (libfuse 2) with one node per
 * name, direct_io by default, the version pinned per open handle. Every
 * open, read and release reaches the event loop (see options.ts).
 */
import { startSession } from './fuse-session.js';
import { HandleTable } from './handles.js';
import { makeOperations } from './operations.js';
import { DEFAULT_MAX_STALENESS_MS, fuseOptionList } from './options.js';
import type { MountOptions, MountStats, SecretSource, SecretsMount } from './types.js';

/** `target` is resolved, checked, created and not yet a mount point (mount.ts). */
export async function mountNative(target: string, source: SecretSource, options: MountOptions = {}): Promise<SecretsMount> {
  const optionList = fuseOptionList({
    maxStalenessMs: options.maxStalenessMs ?? DEFAULT_MAX_STALENESS_MS,
    cache: options.cache ?? 'off',
    debug: options.debug ?? false,
  });
  const stats: MountStats = { requests: 0, lookup: 0, getattr: 0, readdir: 0, open: 0, read: 0, release: 0, forget: 0, refused: 0, errors: 0, stale: 0, retained: 0, openHandles: 0 };
  const handles = new HandleTable();
  const ops = makeOperations({ source, handles, stats, mountedAt: new Date(), mountpoint: target });
  const session = await startSession(target, ops, optionList);

  let unmounting: Promise<void> | undefined;
  return {
    mountpoint: target,
    implementation: 'native',
    stats: () => ({ ...stats, requests: stats.getattr + stats.readdir + stats.open + stats.read + stats.release + stats.refused, openHandles: handles.size }),
    lookups: () => null,
    settled: () => Promise.resolve(),
    unmount: () => (unmounting ??= session.unmount()),
  };
}
