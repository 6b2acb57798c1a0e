/** The store: durable, encrypted records of secrets (and, later, services and nodes). */
export { ConflictError, CorruptionError } from './backend.js';
export type { Backend, KvCondition, KvEntry, KvEvent, KvOp, KvTxn } from './backend.js';
export { EmbeddedBackend, type EmbeddedOptions } from './embedded.js';
export { Envelope, b64, unb64, type SealedValue } from './envelope.js';

export { newObjectId } from './ids.js';
export { Keyring, type KeyringOptions } from './keyring.js';
export { SecretStore, type RevisionedSecret, type SecretDetail, type SecretSummary, type SecretsOptions } from './secrets.js';
export { loadSodium, type Sodium } from './sodium.js';

export { ServiceStore, SERVICE_PREFIX, type GrantRecord, type ServiceRecord } from './services.js';
export { NodeStore, NODE_LABELS_PREFIX, NODE_PREFIX, REVOKED_PREFIX, type NodeContainer, type NodeRecord } from './nodes.js';
export { openStore, type OpenStoreOptions, type OpenedStore } from './open.js';
