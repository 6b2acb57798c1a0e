/**
 * The MountManager the agent runs with: one read-only FUSE mount per
 * container at <dir>/<container-id>, serving that container's service grants
 * from the cache. <dir> is root-only (0700), so no other user can reach a
 * container's mount by path; the container sees it through a bind mount at
 * /run/secrets in its own mount namespace.
 */
import { chmod, mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { HushError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { cleanStaleMounts, kernelFuseUnavailable, mountSecrets, type FuseImplementation, type SecretsMount } from '../tmpfs-mount/index.js';
import type { MountDetails, MountManager, MountRequest } from './mounts.js';

export class FuseMounts implements MountManager {
  private readonly mounts = new Map<string, SecretsMount>();

  private constructor(
    private readonly dir: string,
    private readonly log: Logger,
    readonly implementation: FuseImplementation,
  ) {}

  /**
   * Prepares the directory, removes mounts a previous agent left behind
   * (crash, kill -9), and settles the FUSE implementation: `kernel` unless
   * told otherwise; with none named, fuse-native when this process cannot
   * drive /dev/fuse itself (logged), and named `kernel` fails clearly instead.
   */
  static async create(dir: string, log: Logger, implementation?: FuseImplementation): Promise<FuseMounts> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const cleaned = await cleanStaleMounts(dir);
    if (cleaned.length > 0) log.warn({ cleaned }, 'removed stale secret mounts left by a previous agent');
    if (implementation === 'native') return new FuseMounts(dir, log, 'native');
    const unavailable = await kernelFuseUnavailable(dir);
    if (unavailable === null) return new FuseMounts(dir, log, 'kernel');
    if (implementation === 'kernel') throw new HushError('unavailable', `--fuse kernel: ${unavailable}`);
    log.warn({ reason: unavailable }, 'cannot drive /dev/fuse directly; serving secret mounts through fuse-native (libfuse) instead');
    return new FuseMounts(dir, log, 'native');
  }

  async mount({ containerId, source }: MountRequest): Promise<string> {
    const mountpoint = join(this.dir, containerId);
    await mkdir(mountpoint, { recursive: true, mode: 0o755 });
    const mounted = await mountSecrets(mountpoint, source, { implementation: this.implementation });
    this.mounts.set(containerId, mounted);
    return mountpoint;
  }

  details(containerId: string): MountDetails | undefined {
    const mounted = this.mounts.get(containerId);
    return mounted && { fuse: mounted.implementation, lookups: mounted.lookups() };
  }

  async unmount(containerId: string): Promise<void> {
    const mounted = this.mounts.get(containerId);
    if (!mounted) return;
    this.mounts.delete(containerId);
    try {
      await mounted.unmount();
      await rmdir(mounted.mountpoint);
    } catch (err) {
      this.log.warn({ container: containerId, err: (err as Error).message }, 'could not remove a secret mount');
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.mounts.keys()].map((id) => this.unmount(id)));
  }
}
