/**
 * The test cluster CA, shared by the suites (as swarmkit's ca/testutils is):
 * a real CA from src/pki and the certificates tests keep needing from one, made
 * the way the store makes them. Keys are RSA-2048 from node:crypto, so each
 * certificate costs a key generation: make what a test needs, no more.
 */
import type { Role } from '../../src/acl/index.js';
import { STORE_TLS_NAME } from '../../src/protocol/index.js';
import {
  certFingerprint,
  createClusterCa,
  createCsr,
  formatJoinToken,
  generateKeyPair,
  issueClientCert,
  issueServerCert,
  newJoinSecret,
  signNodeCsr,
  type KeyAndCert,
} from '../../src/pki/index.js';

export interface TestCa extends KeyAndCert {
  /** The CA certificate's fingerprint, as a join token carries it. */
  readonly fingerprint: string;
  /** A server certificate; by default for the store's TLS name, as agents check it. */
  serverCert(hosts?: string[]): KeyAndCert;
  /** An admin client certificate (OU = role). */
  clientCert(commonName: string, role: Role): KeyAndCert;
  /** A node certificate, signed from a CSR as the store signs an agent's at Join: for a fresh key unless one is given. */
  nodeCert(nodeId: string, opts?: { validitySeconds?: number; keyPem?: string }): KeyAndCert;
  /** A join token for this CA: a fresh secret unless one is given. */
  joinToken(secret?: string): string;
}

/** A new cluster CA (a fresh key: two of them with the same name are still two CAs). */
export function newTestCa(opts: { commonName?: string } = {}): TestCa {
  const ca = createClusterCa(opts);
  return {
    ...ca,
    fingerprint: certFingerprint(ca.certPem),
    serverCert: (hosts = [STORE_TLS_NAME]) => issueServerCert(ca, { hosts }),
    clientCert: (commonName, role) => issueClientCert(ca, { commonName, role }),
    nodeCert: (nodeId, { validitySeconds = 3600, keyPem = generateKeyPair().keyPem } = {}) => ({
      keyPem,
      certPem: signNodeCsr(ca, createCsr(keyPem, nodeId), { nodeId, role: 'node', validitySeconds }),
    }),
    joinToken: (secret = newJoinSecret()) => formatJoinToken(certFingerprint(ca.certPem), secret),
  };
}

/** A client certificate from a CA that is not the cluster's: what an outsider holds. */
export function foreignClientCert(commonName = 'mallory', role: Role = 'admin'): KeyAndCert {
  return newTestCa().clientCert(commonName, role);
}
