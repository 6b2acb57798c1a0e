/**
 * The node's identity while the agent runs: its id, the cluster CA, its
 * private key and certificate, all in memory only. Losing them (a restart)
 * costs a rejoin with the token, never a file to protect.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { HushError } from '../errors/index.js';
import { certFingerprint, readCertIdentity, verifyCaSuccession, verifyIssuedBy } from '../pki/index.js';
import type { NodeCredentials } from '../protocol/index.js';

export interface NodeIdentity extends NodeCredentials {
  nodeId: string;
  notAfter: Date;
  /** When the agent got this certificate; renewal is timed from here, not from notBefore (which is back-dated for clock skew). */
  receivedAt: number;
}

/** Checks that the store handed back what we asked for before the agent relies on it. */
export function acceptCertificate(nodeId: string, caPem: string, keyPem: string, certPem: string): NodeIdentity {
  try {
    verifyIssuedBy(caPem, certPem);
  } catch (err) {
    throw new HushError('unauthorized', `the store returned an unusable node certificate: ${(err as Error).message}`);
  }
  const identity = readCertIdentity(certPem);
  if (identity.commonName !== nodeId) {
    throw new HushError('unauthorized', `the store returned a certificate for "${identity.commonName}", not for node "${nodeId}"`);
  }
  if (!new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem))) {
    throw new HushError('unauthorized', 'the store returned a certificate for a key other than the one in our request');
  }
  return { nodeId, caPem, keyPem, certPem, notAfter: identity.notAfter, receivedAt: Date.now() };
}

/** Renew at half of the remaining lifetime, as most short-lived-certificate systems do. */
export function renewalDelayMs(identity: NodeIdentity, now = Date.now()): number {
  const halfLife = (identity.notAfter.getTime() - identity.receivedAt) / 2;
  return Math.max(0, identity.receivedAt + halfLife - now);
}

/**
 * The CA the agent trusts after the store answered a Join or Renew with the
 * CA that issued its certificate. The same CA: nothing changes. Another (a CA
 * rotation): trusted only if the cross certificate shows that the CA the agent
 * trusts vouches for exactly that key and name; the agent then trusts the new
 * CA alone, so the old one's retirement costs it nothing. An empty answer
 * comes from a store before CA rotation: the CA is unchanged.
 */
export function nextTrustedCa(trustedCaPem: string, issuingCaPem: string | undefined, crossPem: string | undefined): string {
  if (!issuingCaPem || certFingerprint(issuingCaPem) === certFingerprint(trustedCaPem)) return trustedCaPem;
  if (!crossPem) throw new HushError('unauthorized', 'the store names a cluster CA other than the one this node trusts, without a cross certificate from it');
  verifyCaSuccession(trustedCaPem, issuingCaPem, crossPem);
  return issuingCaPem;
}
