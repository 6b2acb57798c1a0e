/**
 * mountSecrets: one read-only FUSE filesystem per container, serving exactly
 * the files its SecretSource lists, through the implementation asked for
 * (the kernel protocol by default, fuse-native as the fallback).
 *
 * The serving process must never read its own mount: with fuse-native a
 * synchronous read blocks the event loop that would answer it (the process
 * hangs in D state); with the kernel implementation it would at best cost a
 * thread. Nothing here touches the mount after it is up; callers must not either.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { HushError } from '../errors/index.js';
import { mountKernel } from './kernel-session.js';
import { isMounted } from './mountinfo.js';
import { mountNative } from './native-mount.js';
import type { MountOptions, SecretSource, SecretsMount } from './types.js';

// fuse-native unmounts with `fusermount -uz "<path>"` through a shell, so a
// path with shell syntax in it would be run. Ours are /run/hush/mounts/<id>.
const SAFE_PATH = /^\/[A-Za-z0-9._@:+,=/-]*$/;

export async function mountSecrets(mountpoint: string, source: SecretSource, options: MountOptions = {}): Promise<SecretsMount> {
  const target = resolve(mountpoint);
  if (!SAFE_PATH.test(target)) {
    throw new HushError('bad_request', `mount point ${JSON.stringify(target)} has characters outside [A-Za-z0-9._@:+,=/-]`);
  }
  const implementation = options.implementation ?? 'kernel';
  if (implementation !== 'kernel' && implementation !== 'native') {
    throw new HushError('bad_request', `unknown FUSE implementation ${JSON.stringify(implementation)}: kernel or native`);
  }
  if (await isMounted(target)) {
    throw new HushError('conflict', `${target} is already a mount point (a leftover? cleanStaleMounts removes them)`);
  }
  // Only root traverses the directory underneath; once mounted the root of the
  // mount (0555) is what everyone sees.
  await mkdir(target, { recursive: true, mode: 0o700 });
  return implementation === 'kernel'
    ? mountKernel(target, source, { threads: options.threads, noOpen: options.noOpen, prefill: options.prefill })
    : mountNative(target, source, options);
}
