/**
 * hush PKI: the cluster CA, node/client/server certificates, CSRs, join
 * tokens and constant-time comparisons. Pure library code: keys are returned
 * as PEM strings and never written anywhere; callers decide where they go.
 *
 * node-forge builds and parses X.509; node:crypto generates RSA-2048 keys and
 * does every RSA signature and verification (native, and ~50x faster).
 */
export type { KeyAndCert } from './types.js';
export { NODE_ROLE } from './types.js';
export { generateKeyPair, generateKeyPairAsync } from './keys.js';
export { createClusterCa } from './ca.js';
export { createCsr } from './csr.js';
export {
  signNodeCsr,
  issueClientCert,
  issueServerCert,
} from './issue.js';
export type { CertIdentity } from './identity.js';
export { readCertIdentity } from './identity.js';
export { verifyIssuedBy } from './verify.js';
export { certFingerprint, fingerprintMatches } from './fingerprint.js';
export { secretsEqual } from './constant-time.js';
export { newJoinSecret, formatJoinToken, parseJoinToken } from './join-token.js';
export { createSuccessorCa, verifyCaSuccession } from './ca-rotation.js';
