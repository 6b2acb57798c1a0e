/** The store: durable, encrypted records of secrets, services, nodes and admin certificates, and what changed in them. */
export { ConflictError, CorruptionError } from './backend.js';
export type { Backend, KeyedBackend, KvCondition, KvEntry, KvEvent, KvOp, KvTxn, PeekedValue } from './backend.js';
export { EmbeddedBackend, type EmbeddedOptions } from './embedded.js';
export { Envelope, b64, unb64, type SealedValue } from './envelope.js';

export { newObjectId } from './ids.js';
export { Keyring, type KeyringOptions } from './keyring.js';
export { deriveLogAuth, type LogAuth } from './log-auth.js';
export { SecretStore, type RevisionedSecret, type SecretDetail, type SecretSummary, type SecretsOptions, type VersionMeta, type VersionOptions } from './secrets.js';
export { AuditLog, type AuditQuery } from './audit-log.js';
export { loadSodium, type Sodium } from './sodium.js';

export { ServiceStore, type ServiceRecord, type ServiceSpecChange } from './services.js';
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
export { NodeStore, type NodeContainer, type NodeRecord } from './nodes.js';
export * as keys from './keys.js';
export { ChangeFeed, type ChangeBatch, type StoreChange } from './change-feed.js';
export { CaRecords } from './ca-records.js';
export { openStore, type OpenStoreOptions, type OpenedStore } from './open.js';
export {
  AdminCertStore,
  adminCertStatus,
  type AdminCertRecord,
  type AdminCertStatus,
  type PeerCertificate,
} from './admin-certs.js';
export { LocalLeases, type HeldLease, type LeaseProvider } from './lease.js';
