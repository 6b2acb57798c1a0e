/**
 * The seam for per-container filesystems. The registry calls `mount` once the
 * store has allowed a container and its secrets are held, and `unmount` when
 * the container goes. The FUSE implementation (fuse-mounts.ts, over
 * src/tmpfs-mount) plugs in here, as `hush agent` does; `noMounts` records
 * nothing and reports no mount path, for an agent run without it (tests of
 * the session and the runtime API).
 */
import type { FuseImplementation, LookupRecord, SecretSource } from '../tmpfs-mount/index.js';

export interface MountRequest {
  containerId: string;
  service: string;
  /** The service's files, looked up live from the cache. */
  source: SecretSource;
}

/** What a container's mount can tell about itself (never values). */
export interface MountDetails {
  fuse: FuseImplementation;
  /** kernel: the first lookup of each version and when the kernel released it; native: null. */
  lookups: LookupRecord[] | null;
}

export interface MountManager {
  /** Returns the host path the container's /run/secrets should bind, or null when there is none. */
  mount(request: MountRequest): Promise<string | null>;
  /** The mount of a container, if this manager made one. */
  details?(containerId: string): MountDetails | undefined;
  unmount(containerId: string): Promise<void>;
  /** Unmounts everything, at agent shutdown. */
  close(): Promise<void>;
}

export const noMounts: MountManager = {
  mount: async () => null,
  unmount: async () => {},
  close: async () => {},
};
