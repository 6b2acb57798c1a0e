/**
 * The node agent: joins the cluster with a token (checking the store's CA
 * against it first), keeps one mutual-TLS session with the store, holds what
 * it is sent sealed in RAM, and serves the runtime API for containers.
 */
export { startAgent, type AgentOptions, type RunningAgent } from './agent.js';
export { parseStoreAddress } from './address.js';
export { SecretCache } from './cache.js';
export { ContainerRegistry } from './containers.js';
export { joinStore } from './join.js';
export { FuseMounts } from './fuse-mounts.js';
export { noMounts, type MountManager } from './mounts.js';
export { createRuntimeApp } from './runtime-api.js';
export { CHUNK_BYTES } from './secret-version.js';
export { sourceForService } from './secret-source.js';
export { fetchVerifiedStoreCa } from './store-ca.js';
export { DecisionTimeout, type StoreLink } from './store-link.js';
// The session and its reconnect backoff, for bench/'s agent simulation: simulated agents must speak and retry exactly as this one does.
export { StoreSession } from './session.js';
