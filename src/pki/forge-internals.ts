/**
 * Typed access to the parts of node-forge that @types/node-forge leaves out.
 * They are public functions of forge's pki module; forge's own sign() uses
 * them, and we need them to hand the to-be-signed bytes to node:crypto.
 */
import forge from 'node-forge';

interface UntypedPki {
  getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1;
  getCertificationRequestInfo(csr: forge.pki.CertificateSigningRequest): forge.asn1.Asn1;
}

export const forgePki = forge.pki as unknown as typeof forge.pki & UntypedPki;

/**
 * The ASN.1 UTF8String tag. The typings declare `valueTagClass` as an
 * asn1.Class, but forge compares it with asn1.Type values.
 */
export const UTF8_TAG = forge.asn1.Type.UTF8 as unknown as forge.asn1.Class;

/** forge PEM uses CRLF line ends; the rest of hush (and most tools' output) uses LF. */
export function lfPem(pem: string): string {
  return pem.replace(/\r\n/g, '\n');
}
