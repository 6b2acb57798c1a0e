/**
 * forge builds the ASN.1 of certificates and CSRs; node:crypto (OpenSSL) does
 * the RSA private-key operation. forge's pure-JS RSA signing costs ~70 ms per
 * certificate, native signing well under 1 ms. The result is byte-for-byte
 * what forge's own sign() would produce: SHA-256 with RSA, PKCS#1 v1.5.
 */
import { sign } from 'node:crypto';
import forge from 'node-forge';
import { forgePki } from './forge-internals.js';

const SIGNATURE_OID = forge.pki.oids.sha256WithRSAEncryption!;

function signBytes(derBytes: string, keyPem: string): string {
  // forge keeps bytes in "binary" strings (one char per byte).
  return sign('sha256', Buffer.from(derBytes, 'binary'), keyPem).toString('binary');
}

export function signCertificate(cert: forge.pki.Certificate, keyPem: string): void {
  cert.md = forge.md.sha256.create();
  cert.signatureOid = cert.siginfo.algorithmOid = SIGNATURE_OID;
  // certificateToPem() reuses this cached TBS, so the PEM holds exactly the signed bytes.
  cert.tbsCertificate = forgePki.getTBSCertificate(cert);
  cert.signature = signBytes(forge.asn1.toDer(cert.tbsCertificate).getBytes(), keyPem);
}

export function signCertificationRequest(csr: forge.pki.CertificateSigningRequest, keyPem: string): void {
  csr.md = forge.md.sha256.create();
  csr.signatureOid = csr.siginfo.algorithmOid = SIGNATURE_OID;
  csr.certificationRequestInfo = forgePki.getCertificationRequestInfo(csr);
  csr.signature = signBytes(forge.asn1.toDer(csr.certificationRequestInfo).getBytes(), keyPem);
}
