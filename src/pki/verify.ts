/**
 * Checks a peer certificate against the cluster CA outside a TLS handshake:
 * renewals, certificates handed over out of band, and tests. Inside TLS,
 * node's tls does the same checks itself.
 */
import { HushError, isHushError } from '../errors/index.js';
import { parseCertificate, readX509 } from './parse.js';
import type { KeyAndCert } from './types.js';

/** Throws HushError('unauthorized') saying why, unless `certPem` was signed by the CA and is valid at `at`. */
export function verifyIssuedBy(ca: KeyAndCert | string, certPem: string, at: Date = new Date()): void {
  const caCert = readX509(typeof ca === 'string' ? ca : ca.certPem);
  const cert = asUnauthorized(() => readX509(certPem));

  // checkIssued compares the issuer name (and key identifiers); verify checks the signature itself.
  if (!cert.checkIssued(caCert) || !cert.verify(caCert.publicKey)) {
    throw new HushError('unauthorized', "certificate was not issued by this cluster's CA");
  }
  // The CA certificate is signed by the CA too, but it is a trust anchor, not anyone's identity.
  if (cert.ca) throw new HushError('unauthorized', 'a CA certificate is not accepted as a peer certificate');

  const { validity } = asUnauthorized(() => parseCertificate(cert)).forge;
  if (at.getTime() < validity.notBefore.getTime()) {
    throw new HushError('unauthorized', `certificate is not valid before ${validity.notBefore.toISOString()}`);
  }
  if (at.getTime() > validity.notAfter.getTime()) {
    throw new HushError('unauthorized', `certificate expired at ${validity.notAfter.toISOString()}`);
  }
}

function asUnauthorized<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (isHushError(err)) throw new HushError('unauthorized', `peer certificate rejected: ${err.message}`);
    throw err;
  }
}
