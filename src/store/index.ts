/** The store: durable, encrypted records of secrets (and, later, services and nodes). */
export { ConflictError, CorruptionError } from './backend.js';
export type { Backend, KeyedBackend, KvCondition, KvEntry, KvEvent, KvOp, KvTxn, PeekedValue } from './backend.js';
export { EmbeddedBackend, type EmbeddedOptions } from './embedded.js';
export { Envelope, b64, unb64, type SealedValue } from './envelope.js';

export { newObjectId } from './ids.js';
export { Keyring, type KeyringOptions } from './keyring.js';
export { deriveLogAuth, type LogAuth } from './log-auth.js';
export { SecretStore, type RevisionedSecret, type SecretDetail, type SecretSummary, type SecretsOptions } from './secrets.js';
export { loadSodium, type Sodium } from './sodium.js';

export { ServiceStore, SERVICE_PREFIX, type GrantRecord, type ServiceRecord, type ServiceSpecChange } from './services.js';
export {
  StackStore,
  STACK_LABEL,
  type ActionKind,
  type DeployAction,
  type DeployRequest,
  type DeployResult,
  type DeploySecret,
  type DeployService,
  type StackSummary,
} from './stacks.js';
export { NodeStore, NODE_LABELS_PREFIX, NODE_PREFIX, REVOKED_PREFIX, type NodeContainer, type NodeRecord } from './nodes.js';
export { openStore, type OpenStoreOptions, type OpenedStore } from './open.js';
export {
  AdminCertStore,
  adminCertStatus,
  ADMIN_CERT_NAME_PREFIX,
  ADMIN_CERT_PREFIX,
  type AdminCertRecord,
  type AdminCertRole,
  type AdminCertStatus,
  type PeerCertificate,
} from './admin-certs.js';
