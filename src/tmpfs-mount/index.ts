/**
 * The per-container read-only FUSE filesystem: serves a container's secrets
 * from the agent's RAM at /run/hush/mounts/<container-id>. The only door into
 * this folder.
 */
export { mountSecrets } from './mount.js';
export { cleanStaleMounts } from './stale.js';
export type {
  MountOptions,
  MountStats,
  OpenedVersion,
  SecretFile,
  SecretSource,
  SecretsMount,
} from './types.js';
