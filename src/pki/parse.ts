/**
 * Reading certificates given as PEM text or DER bytes. OpenSSL (node's
 * X509Certificate) parses first: it accepts both encodings, reads any key
 * type, and gives the exact DER that was signed. forge then reads the name
 * and date fields, for certificates hush issued (RSA: forge reads no other).
 */
import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { HushError } from '../errors/index.js';

export interface ParsedCertificate {
  x509: X509Certificate;
  forge: forge.pki.Certificate;
}

export function readX509(cert: string | Buffer): X509Certificate {
  try {
    return new X509Certificate(cert);
  } catch {
    throw new HushError('bad_request', 'not an X.509 certificate (expected PEM or DER)');
  }
}

export function parseCertificate(cert: string | Buffer | X509Certificate): ParsedCertificate {
  const x509 = cert instanceof X509Certificate ? cert : readX509(cert);
  try {
    return { x509, forge: forge.pki.certificateFromAsn1(forge.asn1.fromDer(x509.raw.toString('binary'))) };
  } catch (err) {
    throw new HushError('bad_request', `unsupported certificate: ${(err as Error).message}`);
  }
}
