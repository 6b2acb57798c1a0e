/**
 * The node agent: joins the cluster with a token (checking the store's CA
 * against it first), keeps one mutual-TLS session with the store, holds what
 * it is sent sealed in RAM, and serves the runtime API for containers.
 */
export { startAgent, type AgentOptions, type AgentStatus, type RunningAgent } from './agent.js';
export { parseStoreAddress, parseStoreAddresses, DEFAULT_NODE_PORT, type StoreAddress } from './address.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { SecretCache, type HeldSecret, type HeldService, type HeldView } from './cache.js';
export { ContainerRegistry, DEFAULT_DECISION_TIMEOUT_MS, type ContainerView, type RegistryOptions } from './containers.js';
export { joinStore, type JoinOptions } from './join.js';
export { FuseMounts } from './fuse-mounts.js';
export { isSameProcess, processStartTime } from './process-identity.js';
export { noMounts, type MountManager, type MountRequest } from './mounts.js';
export { acceptCertificate, renewalDelayMs, type NodeIdentity } from './node-identity.js';
export { createRuntimeApp, type RuntimeApiDeps } from './runtime-api.js';
export { CONTAINER_ID, validateContainerRequest } from './runtime-validate.js';
export { SecretVersion, CHUNK_BYTES, type SecretVersionInfo } from './secret-version.js';
export { sourceForService, type OpenSecret, type SecretFile, type SecretSource } from './secret-source.js';
export { StoreSession, type SessionOptions, type SessionState, type SessionStatus } from './session.js';
export { fetchVerifiedStoreCa } from './store-ca.js';
export { DecisionTimeout, type StoreLink } from './store-link.js';
