/**
 * hush PKI: the cluster CA, node/client/server certificates, CSRs, join
 * tokens and constant-time comparisons. Pure library code: keys are returned
 * as PEM strings and never written anywhere; callers decide where they go.
 *
 * node-forge builds and parses X.509; node:crypto generates RSA-2048 keys and
 * does every RSA signature and verification (native, and ~50x faster).
 */
export type { KeyAndCert, NodeRole } from './types.js';
export { NODE_ROLE, ORGANIZATION } from './types.js';
export type { KeyPair } from './keys.js';
export { generateKeyPair, generateKeyPairAsync } from './keys.js';
export { createClusterCa, DEFAULT_CA_COMMON_NAME, DEFAULT_CA_VALIDITY_DAYS } from './ca.js';
export { createCsr } from './csr.js';
export type { NodeCertOptions, ClientCertOptions, ServerCertOptions } from './issue.js';
export {
  signNodeCsr,
  issueClientCert,
  issueServerCert,
  DEFAULT_CLIENT_VALIDITY_SECONDS,
  DEFAULT_SERVER_VALIDITY_DAYS,
  DEFAULT_SERVER_COMMON_NAME,
} from './issue.js';
export { LOOPBACK_HOSTS } from './alt-names.js';
export type { CertIdentity } from './identity.js';
export { readCertIdentity } from './identity.js';
export { verifyIssuedBy } from './verify.js';
export { certFingerprint, fingerprintMatches } from './fingerprint.js';
export { secretsEqual } from './constant-time.js';
export type { JoinToken } from './join-token.js';
export { newJoinSecret, formatJoinToken, parseJoinToken } from './join-token.js';
export type { CaSuccession } from './ca-rotation.js';
export { createSuccessorCa, verifyCaSuccession } from './ca-rotation.js';
