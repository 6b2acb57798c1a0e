/**
 * Who a certificate says it is. The API calls this on a peer certificate that
 * TLS (or verifyIssuedBy) has already checked against the cluster CA; the
 * subject is the only identity a node or admin has (DESIGN: "never a field in
 * a message").
 */
import { HushError } from '../errors/index.js';
import { certFingerprintOfDer } from './fingerprint.js';
import { decodedAttributes, singleAttribute } from './names.js';
import { parseCertificate } from './parse.js';

export interface CertIdentity {
  commonName: string;
  /** The OU: 'node', 'admin', 'operator' or 'auditor' for certificates hush issues; '' if the certificate has none. */
  role: string;
  organization?: string;
  /** Lowercase hex, as issued. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  fingerprint: string;
}

/** Accepts PEM text or DER bytes. Throws HushError('bad_request') on anything unreadable or ambiguous. */
export function readCertIdentity(cert: string | Buffer): CertIdentity {
  const parsed = parseCertificate(cert);
  const subject = decodedAttributes(parsed.forge.subject.attributes);
  const commonName = singleAttribute(subject, 'CN');
  if (commonName === undefined) throw new HushError('bad_request', 'certificate subject has no common name');
  const organization = singleAttribute(subject, 'O');
  return {
    commonName,
    role: singleAttribute(subject, 'OU') ?? '',
    ...(organization !== undefined ? { organization } : {}),
    serial: parsed.forge.serialNumber.toLowerCase(),
    notBefore: parsed.forge.validity.notBefore,
    notAfter: parsed.forge.validity.notAfter,
    fingerprint: certFingerprintOfDer(parsed.x509.raw),
  };
}
