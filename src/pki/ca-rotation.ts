/**
 * Rolling the cluster CA over to a new key without a flag day (RFC 4210's
 * root CA key update: "NewWithOld"). The new CA keeps the old one's exact
 * name and gets a second certificate: its key, signed by the old key (the
 * cross certificate). So, during the transition:
 * - a peer that trusts only the old CA verifies a leaf of the new one
 *   through the cross certificate (leaf → cross → old);
 * - a peer that trusts the new CA verifies it directly;
 * - the old CA's `pathLenConstraint: 0` still holds: an intermediate whose
 *   subject equals its issuer is self-issued and does not count toward the
 *   path length (RFC 5280 6.1.4 (l); OpenSSL's EXFLAG_SI), which is why the
 *   name must not change. Key identifiers (SKI/AKI) tell the two apart.
 * An agent that trusts the old CA accepts the new one only when a cross
 * certificate signed by the old CA vouches for exactly that key and name
 * (verifyCaSuccession): a store cannot make it trust an arbitrary CA.
 */
import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { HushError } from '../errors/index.js';
import { createClusterCa, loadCa } from './ca.js';
import { lfPem } from './forge-internals.js';
import { signCertificate } from './native-signing.js';
import { parseCertificate, readX509 } from './parse.js';
import { randomSerialHex } from './serial.js';
import type { KeyAndCert } from './types.js';
import { CLOCK_SKEW_MS } from './validity.js';

export interface CaSuccession {
  /** The new self-signed CA (same name as the old, new key). */
  next: KeyAndCert;
  /** The new CA's key and name, signed by the old CA. */
  crossPem: string;
}

/** A successor to `previous`, and the cross certificate by which `previous` vouches for it. */
export function createSuccessorCa(previous: KeyAndCert): CaSuccession {
  const old = loadCa(previous);
  const next = createClusterCa({ subject: old.issuer });
  const nextCert = parseCertificate(next.certPem).forge;

  const cross = forge.pki.createCertificate();
  cross.publicKey = nextCert.publicKey;
  cross.serialNumber = randomSerialHex();
  const now = Date.now();
  cross.validity.notBefore = new Date(now - CLOCK_SKEW_MS);
  // Worth nothing once the old CA is gone, so it cannot outlive it.
  cross.validity.notAfter = new Date(Math.min(nextCert.validity.notAfter.getTime(), old.notAfter.getTime()));
  cross.setSubject(old.issuer);
  cross.setIssuer(old.issuer);
  cross.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    // The same key identifier as the new CA's own certificate: leaves name it in their AKI.
    { name: 'subjectKeyIdentifier' },
    // Without it the cross certificate would look self-signed to OpenSSL (same name, no AKI to disagree).
    { name: 'authorityKeyIdentifier', keyIdentifier: old.keyIdentifier },
  ]);
  signCertificate(cross, old.keyPem);
  return { next, crossPem: lfPem(forge.pki.certificateToPem(cross)) };
}

/**
 * Throws HushError('unauthorized') unless `crossPem` is signed by the trusted
 * CA and certifies exactly the key and name of `nextCaPem`, a self-signed CA
 * certificate. Then trusting `nextCaPem` adds no trust the old CA did not give.
 */
export function verifyCaSuccession(trustedCaPem: string, nextCaPem: string, crossPem: string): void {
  const refuse = (why: string): never => {
    throw new HushError('unauthorized', `the new cluster CA is not vouched for by the CA this node trusts: ${why}`);
  };
  let trusted: X509Certificate, next: X509Certificate, cross: X509Certificate;
  try {
    [trusted, next, cross] = [readX509(trustedCaPem), readX509(nextCaPem), readX509(crossPem)];
  } catch (err) {
    return refuse((err as Error).message);
  }
  if (!next.ca || next.subject !== next.issuer || !next.verify(next.publicKey)) refuse('it is not a self-signed CA certificate');
  if (!cross.ca) refuse('the cross certificate is not a CA certificate');
  if (!cross.checkIssued(trusted) || !cross.verify(trusted.publicKey)) refuse('the cross certificate was not signed by the trusted CA');
  if (!cross.publicKey.equals(next.publicKey) || cross.subject !== next.subject) refuse('the cross certificate is for another key or name');
  const now = Date.now();
  if (now < Date.parse(cross.validFrom) || now > Date.parse(cross.validTo)) refuse('the cross certificate is not valid now');
}
