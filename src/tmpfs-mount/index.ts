/**
 * The per-container read-only FUSE filesystem: serves a container's secrets
 * from the agent's RAM at /run/hush/mounts/<container-id>, over the FUSE
 * kernel protocol (default) or fuse-native (fallback). The only door into
 * this folder.
 */
export { mountSecrets } from './mount.js';
export { cleanStaleMounts } from './stale.js';
export { kernelFuseUnavailable } from './probe.js';
export type {
  FuseImplementation,
  LookupRecord,
  MountOptions,
  OpenedVersion,
  SecretFile,
  SecretSource,
  SecretsMount,
} from './types.js';
