/**
 * Builds and signs an end-entity certificate under the cluster CA. The three
 * kinds we issue (node, admin client, store server) differ only in subject,
 * lifetime, extended key usage and SANs; everything else is decided here once.
 */
import forge from 'node-forge';
import { loadCa } from './ca.js';
import { lfPem } from './forge-internals.js';
import { signCertificate } from './native-signing.js';
import { randomSerialHex } from './serial.js';
import type { KeyAndCert } from './types.js';
import { CLOCK_SKEW_MS } from './validity.js';

/** forge's subjectAltName entry: type 2 is dNSName, type 7 is iPAddress (RFC 5280 GeneralName). */
export type AltName = { type: 2; value: string } | { type: 7; ip: string };

export interface LeafSpec {
  publicKey: forge.pki.PublicKey;
  subject: forge.pki.CertificateField[];
  lifetimeMs: number;
  usage: 'clientAuth' | 'serverAuth';
  altNames?: AltName[];
}

export function issueLeaf(ca: KeyAndCert, spec: LeafSpec): string {
  const loaded = loadCa(ca);
  const cert = forge.pki.createCertificate();
  cert.publicKey = spec.publicKey;
  cert.serialNumber = randomSerialHex();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - CLOCK_SKEW_MS);
  // A leaf cannot usefully outlive its CA; capping makes the real end visible in the certificate.
  cert.validity.notAfter = new Date(Math.min(now + spec.lifetimeMs, loaded.notAfter.getTime()));
  cert.setSubject(spec.subject);
  cert.setIssuer(loaded.issuer);

  const extensions: object[] = [
    { name: 'basicConstraints', cA: false, critical: true },
    // keyEncipherment only matters for RSA key exchange (TLS 1.2 peers); TLS 1.3 uses digitalSignature.
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', [spec.usage]: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: loaded.keyIdentifier },
  ];
  if (spec.altNames && spec.altNames.length > 0) extensions.push({ name: 'subjectAltName', altNames: spec.altNames });
  cert.setExtensions(extensions);

  signCertificate(cert, loaded.keyPem);
  return lfPem(forge.pki.certificateToPem(cert));
}
