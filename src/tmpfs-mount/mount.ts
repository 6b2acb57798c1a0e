/**
 * mountSecrets: one read-only FUSE filesystem per container, serving exactly
 * the files its SecretSource lists.
 *
 * The serving process must never read its own mount (a synchronous read
 * blocks the event loop that would answer it: the process hangs in D state).
 * Nothing here touches the mount after it is up; callers must not either.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { HushError } from '../errors/index.js';
import { startSession } from './fuse-session.js';
import { HandleTable } from './handles.js';
import { isMounted } from './mountinfo.js';
import { makeOperations } from './operations.js';
import { DEFAULT_MAX_STALENESS_MS, fuseOptionList } from './options.js';
import type { MountOptions, MountStats, SecretSource, SecretsMount } from './types.js';

// fuse-native unmounts with `fusermount -uz "<path>"` through a shell, so a
// path with shell syntax in it would be run. Ours are /run/hush/mounts/<id>.
const SAFE_PATH = /^\/[A-Za-z0-9._@:+,=/-]*$/;

export async function mountSecrets(
  mountpoint: string,
  source: SecretSource,
  options: MountOptions = {},
): Promise<SecretsMount> {
  const target = resolve(mountpoint);
  if (!SAFE_PATH.test(target)) {
    throw new HushError('bad_request', `mount point ${JSON.stringify(target)} has characters outside [A-Za-z0-9._@:+,=/-]`);
  }
  if (await isMounted(target)) {
    throw new HushError('conflict', `${target} is already a mount point (a leftover? cleanStaleMounts removes them)`);
  }
  const optionList = fuseOptionList({
    maxStalenessMs: options.maxStalenessMs ?? DEFAULT_MAX_STALENESS_MS,
    cache: options.cache ?? 'off',
    debug: options.debug ?? false,
  });
  // Only root traverses the directory underneath; once mounted the root of the
  // mount (0555) is what everyone sees.
  await mkdir(target, { recursive: true, mode: 0o700 });

  const stats: MountStats = { getattr: 0, readdir: 0, open: 0, read: 0, release: 0, refused: 0, errors: 0, openHandles: 0 };
  const handles = new HandleTable();
  const ops = makeOperations({ source, handles, stats, mountedAt: new Date(), mountpoint: target });
  const session = await startSession(target, ops, optionList);

  let unmounting: Promise<void> | undefined;
  return {
    mountpoint: target,
    stats: () => ({ ...stats, openHandles: handles.size }),
    unmount: () => (unmounting ??= session.unmount()),
  };
}
