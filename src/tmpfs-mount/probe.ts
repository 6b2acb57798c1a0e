/**
 * Can this process drive /dev/fuse itself? The agent asks once at start when
 * no implementation was named, and falls back to fuse-native (logged) when
 * not. The only honest answer is to try: a mount of an empty directory under
 * the agent's mounts directory, its INIT answered, unmounted again.
 */
import { mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { mountKernel } from './kernel-session.js';

const empty = { list: () => [], lookup: () => undefined, onChange: () => () => {} };

/** Null when the kernel implementation works here; otherwise why not. */
export async function kernelFuseUnavailable(dir: string): Promise<string | null> {
  // A fixed name: a probe left by a crashed agent is unmounted by cleanStaleMounts and reused here.
  const target = join(dir, '.probe');
  try {
    await mkdir(target, { recursive: true, mode: 0o700 });
    const mount = await mountKernel(target, empty, { threads: 1 });
    await mount.unmount();
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await rmdir(target).catch(() => undefined);
  }
}
