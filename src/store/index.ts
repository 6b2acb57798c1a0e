/** The store: durable, encrypted records of secrets, services, nodes and admin certificates, and what changed in them. */
export { ConflictError, CorruptionError } from './backend.js';
export type { Backend, KvEvent, KvOp, KvTxn } from './backend.js';
export { EmbeddedBackend } from './embedded.js';
export { EtcdBackend, type EtcdOptions } from './etcd.js';
export { migrateToEtcd } from './migrate.js';
export { etcdLeadership, leadershipLeases, soleLeadership, type Leadership } from './leadership.js';
export { Envelope, b64 } from './envelope.js';

export { Keyring } from './keyring.js';
export { deriveLogAuth, type LogAuth } from './log-auth.js';
export { SecretStore, type RevisionedSecret, type SecretDetail, type SecretSummary } from './secrets.js';
export { AuditLog, type AuditQuery } from './audit-log.js';
export { loadSodium, type Sodium } from './sodium.js';

export { ServiceStore, type ServiceRecord } from './services.js';
export {
  StackStore,
  STACK_LABEL,
  type DeployAction,
  type DeployRequest,
  type DeployResult,
  type DeploySecret,
  type StackSummary,
} from './stacks.js';
export { NodeStore, type NodeContainer, type NodeRecord } from './nodes.js';
export * as keys from './keys.js';
export { type ChangeBatch, type NodeAcksRecord, type NodeSessionRecord, type ReplicaRecord, type StoreChange } from './change-feed.js';
export { CaRecords, type PreviousCaRecord } from './ca-records.js';
export { openStore, type OpenedStore } from './open.js';
export {
  AdminCertStore,
  adminCertStatus,
  type AdminCertRecord,
  type AdminCertStatus,
  type PeerCertificate,
} from './admin-certs.js';
export { LocalLeases, type HeldLease, type LeaseProvider } from './lease.js';
