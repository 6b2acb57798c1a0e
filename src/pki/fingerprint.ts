import { createHash } from 'node:crypto';
import { secretsEqual } from './constant-time.js';
import { readX509 } from './parse.js';

/** Lowercase hex SHA-256 of the certificate's DER encoding (`openssl x509 -fingerprint -sha256`, without colons). */
export function certFingerprint(cert: string | Buffer): string {
  return certFingerprintOfDer(readX509(cert).raw);
}

export function certFingerprintOfDer(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

/**
 * Does the CA certificate a store presents match the fingerprint in the join
 * token? This is how a joining agent comes to trust a CA it has never seen
 * (the Swarm model). The expected value may be in either case and may have
 * colons; anything unreadable simply does not match.
 */
export function fingerprintMatches(expectedFingerprint: string, presentedCaPem: string | Buffer): boolean {
  let presented: string;
  try {
    presented = certFingerprint(presentedCaPem);
  } catch {
    return false;
  }
  return secretsEqual(expectedFingerprint.replace(/:/g, '').toLowerCase(), presented);
}
