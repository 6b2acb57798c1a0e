/**
 * The MountManager the agent runs with: one read-only FUSE mount per
 * container at <dir>/<container-id>, serving that container's service grants
 * from the cache. <dir> is root-only (0700), so no other user can reach a
 * container's mount by path; the container sees it through a bind mount at
 * /run/secrets in its own mount namespace.
 */
import { chmod, mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log/index.js';
import { cleanStaleMounts, mountSecrets, type SecretsMount } from '../tmpfs-mount/index.js';
import type { MountManager, MountRequest } from './mounts.js';



export class FuseMounts implements MountManager {
  private readonly mounts = new Map<string, SecretsMount>();

  private constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  /** Prepares the directory and removes mounts a previous agent left behind (crash, kill -9). */
  static async create(dir: string, log: Logger): Promise<FuseMounts> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const cleaned = await cleanStaleMounts(dir);
    if (cleaned.length > 0) log.warn({ cleaned }, 'removed stale secret mounts left by a previous agent');
    return new FuseMounts(dir, log);
  }

  async mount({ containerId, source }: MountRequest): Promise<string> {
    const mountpoint = join(this.dir, containerId);
    await mkdir(mountpoint, { recursive: true, mode: 0o755 });
    const mounted = await mountSecrets(mountpoint, source);
    this.mounts.set(containerId, mounted);
    return mountpoint;
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
