/**
 * rotation: the policy of secret rotation, no I/O. How a generated value is
 * made, how many versions a secret keeps, which entitled nodes hold which
 * version (fed from the nodes' acks), when a scheduled rotation is due, and
 * how the audit log's records are chained and checked, and who read which
 * version (reads.ts). The store applies the
 * retention rule and the schedules, the admin API the generator, the
 * dispatcher reports acks to the tracker, the store's audit log uses the chain.
 */
export { CHARSETS, encodeValue, generateEncoded, generateValue, MAX_GENERATE_BYTES, MIN_GENERATE_BYTES, type Charset, type RandomSource } from './generate.js';
export { DEFAULT_KEEP_VERSIONS, MAX_KEEP_VERSIONS, assertKeepVersions, retainVersions } from './retention.js';
export { PropagationTracker, type AckedState, type Propagation } from './propagation.js';
export { ReadLedger, type ReadRecord } from './reads.js';
export { afterRun, isDue, newSchedule, parsePeriod, type RotationSchedule } from './schedule.js';
export {
  chainEntries,
  verifyAuditLog,
  type AuditEntry,
  type AuditHead,
  type AuditRecord,
  type AuditVerdict,
} from './audit-chain.js';
