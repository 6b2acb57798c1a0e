/**
 * One libfuse session through fuse-native: mount with our exact option list,
 * unmount lazily. fuse-native is loaded on first mount, not at import, so
 * cleanStaleMounts and the types stay usable on a host without libfuse2, and
 * a missing library becomes one clear error instead of a crash at startup.
 */
import type FuseNative from 'fuse-native';
import { HushError } from '../errors/index.js';
import { log } from '../log/index.js';
import { run } from './exec.js';
import { isMounted } from './mountinfo.js';

type FuseClass = typeof FuseNative;

let loading: Promise<FuseClass> | undefined;

function loadFuse(): Promise<FuseClass> {
  loading ??= import('fuse-native').then(
    (m) => m.default,
    (err: Error) => {
      loading = undefined;
      throw new HushError(
        'unavailable',
        `FUSE is unavailable (${err.message}); install libfuse2 and fuse (apt-get install libfuse2 fuse)`,
      );
    },
  );
  return loading;
}

export interface Session {
  unmount(): Promise<void>;
}

export async function startSession(mountpoint: string, ops: FuseNative.Operations, options: string[]): Promise<Session> {
  const Fuse = await loadFuse();

  class HushFuse extends Fuse {
    // fuse-native builds `-o` only from its own camel-cased options, which have
    // no `ro`; the option string is ours entirely, so we build all of it.
    protected override _fuseOptions(): string {
      return '-o' + options.join(',');
    }
  }

  // timeout: false: our handlers answer synchronously, so fuse-native's
  // per-request 15 s timer (a setTimeout + clearTimeout per request) buys nothing.
  const fuse = new HushFuse(mountpoint, ops, { timeout: false });
  await new Promise<void>((resolve, reject) => {
    fuse.mount((err) => {
      if (err) {
        reject(new HushError('unavailable', `mounting ${mountpoint} failed: ${err.message} (is /dev/fuse present?)`));
      } else resolve();
    });
  });

  return {
    async unmount() {
      // fuse-native runs `fusermount -uz` (lazy: works with files still open;
      // their readers keep their pinned versions until they close), then lets
      // go of the handle that keeps the event loop alive.
      const err = await new Promise<Error | null>((resolve) => fuse.unmount(resolve));
      if (err === null || !(await isMounted(mountpoint))) {
        if (err) log.warn({ mountpoint }, 'secrets mount: already unmounted by someone else');
        return;
      }
      const fallback = await run('umount', ['-l', mountpoint]);
      if (!fallback.ok && (await isMounted(mountpoint))) {
        throw new HushError('internal', `unmounting ${mountpoint} failed: ${err.message}; ${fallback.stderr}`);
      }
    },
  };
}
