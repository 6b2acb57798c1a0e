/**
 * PKCS#10 certificate signing requests. The agent makes one with a key that
 * never leaves its memory; the store checks the request's signature (proof
 * that the requester holds the key) and keeps only its public key: the
 * subject and any requested extensions are the store's to decide.
 */
import { verify } from 'node:crypto';
import forge from 'node-forge';
import { HushError } from '../errors/index.js';
import { lfPem } from './forge-internals.js';
import { publicKeyPemOf } from './keys.js';
import { subjectAttributes } from './names.js';
import { signCertificationRequest } from './native-signing.js';

/** Below this an RSA key is not worth certifying (NIST SP 800-57: 2048 bits through 2030). */
const MIN_RSA_BITS = 2048;

const ACCEPTED_SIGNATURES: Record<string, string> = {
  [forge.pki.oids.sha256WithRSAEncryption!]: 'sha256',
  [forge.pki.oids.sha384WithRSAEncryption!]: 'sha384',
  [forge.pki.oids.sha512WithRSAEncryption!]: 'sha512',
};

export function createCsr(keyPem: string, commonName: string): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(publicKeyPemOf(keyPem));
  csr.setSubject(subjectAttributes({ commonName }));
  signCertificationRequest(csr, keyPem);
  return lfPem(forge.pki.certificationRequestToPem(csr));
}

/**
 * The public key of a CSR whose signature checks out, else
 * HushError('bad_request'). The signature is checked by OpenSSL over the
 * request info forge parsed, rather than by forge's JavaScript RSA.
 */
export function verifiedCsrPublicKey(csrPem: string): forge.pki.rsa.PublicKey {
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch (err) {
    throw new HushError('bad_request', `not a PKCS#10 certificate request with an RSA key: ${(err as Error).message}`);
  }
  const publicKey = csr.publicKey as forge.pki.rsa.PublicKey | null;
  if (!publicKey || !csr.certificationRequestInfo) throw new HushError('bad_request', 'certificate request has no public key');
  if (publicKey.n.bitLength() < MIN_RSA_BITS) {
    throw new HushError('bad_request', `certificate request key is ${publicKey.n.bitLength()} bits; at least ${MIN_RSA_BITS} required`);
  }
  const hash = csr.signatureOid ? ACCEPTED_SIGNATURES[csr.signatureOid] : undefined;
  if (!hash) throw new HushError('bad_request', 'certificate request must be signed with SHA-256, SHA-384 or SHA-512 with RSA');

  const signed = Buffer.from(forge.asn1.toDer(csr.certificationRequestInfo).getBytes(), 'binary');
  const signature = Buffer.from(String(csr.signature), 'binary');
  if (!signatureVerifies(hash, signed, forge.pki.publicKeyToPem(publicKey), signature)) throw new HushError('bad_request', 'certificate request signature does not verify');
  return publicKey;
}

function signatureVerifies(hash: string, signed: Buffer, publicKeyPem: string, signature: Buffer): boolean {
  try {
    return verify(hash, signed, publicKeyPem, signature);
  } catch {
    return false; // e.g. a signature longer than the modulus
  }
}
