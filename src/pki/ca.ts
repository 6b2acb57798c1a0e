/**
 * The cluster CA: a self-signed root that signs node, admin-client and store
 * server certificates. It signs leaves only (pathLen 0), so a leaked leaf key
 * can never mint further certificates.
 */
import { createPublicKey } from 'node:crypto';
import forge from 'node-forge';
import { HushError } from '../errors/index.js';
import { lfPem } from './forge-internals.js';
import { generateKeyPair } from './keys.js';
import { decodedAttributes, subjectAttributes } from './names.js';
import { signCertificate } from './native-signing.js';
import { parseCertificate } from './parse.js';
import { randomSerialHex } from './serial.js';
import type { KeyAndCert } from './types.js';
import { CLOCK_SKEW_MS, checkLifetime, daysToMs } from './validity.js';

export const DEFAULT_CA_COMMON_NAME = 'hush cluster CA';
export const DEFAULT_CA_VALIDITY_DAYS = 3650;

export function createClusterCa(opts: { commonName?: string; validityDays?: number; subject?: forge.pki.CertificateField[] } = {}): KeyAndCert {
  const validityDays = opts.validityDays ?? DEFAULT_CA_VALIDITY_DAYS;
  checkLifetime('validityDays', validityDays);
  const { keyPem, publicKeyPem } = generateKeyPair();

  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = randomSerialHex();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(now + daysToMs(validityDays));
  // A successor CA takes its predecessor's exact name (ca-rotation.ts says why).
  const subject = opts.subject ?? subjectAttributes({ commonName: opts.commonName ?? DEFAULT_CA_COMMON_NAME });
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  signCertificate(cert, keyPem);
  return { certPem: lfPem(forge.pki.certificateToPem(cert)), keyPem };
}

/** What issuing under the CA needs, read once per issued certificate. */
export interface LoadedCa {
  issuer: forge.pki.CertificateField[];
  keyIdentifier: string;
  notAfter: Date;
  keyPem: string;
}

/**
 * Reads a CA for signing, refusing a certificate that is not a CA or a key
 * that is not its key: either mistake (say, swapped files in HUSH_HOME) would
 * otherwise produce certificates that every peer rejects, far from the cause.
 */
export function loadCa(ca: KeyAndCert): LoadedCa {
  const { x509, forge: cert } = parseCertificate(ca.certPem);
  if (!x509.ca) throw new HushError('bad_request', 'the cluster CA certificate is not a CA certificate');
  let keyMatches: boolean;
  try {
    keyMatches = x509.publicKey.equals(createPublicKey(ca.keyPem));
  } catch {
    throw new HushError('bad_request', 'the cluster CA key is not a PEM private key');
  }
  if (!keyMatches) throw new HushError('bad_request', 'the cluster CA key does not belong to the CA certificate');
  return {
    issuer: decodedAttributes(cert.subject.attributes),
    keyIdentifier: keyIdentifierOf(cert),
    notAfter: cert.validity.notAfter,
    keyPem: ca.keyPem,
  };
}

/**
 * A leaf's authorityKeyIdentifier must equal the CA's subjectKeyIdentifier as
 * written in the CA (OpenSSL uses it to pick the issuer), so read it rather
 * than recompute it; compute it only for a CA that has none.
 */
function keyIdentifierOf(cert: forge.pki.Certificate): string {
  const ski = cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
  return ski?.subjectKeyIdentifier !== undefined
    ? forge.util.hexToBytes(ski.subjectKeyIdentifier)
    : cert.generateSubjectKeyIdentifier().getBytes();
}
