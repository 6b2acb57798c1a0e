import { randomBytes } from 'node:crypto';

/**
 * A random serial number as hex: 16 bytes with the first forced into
 * 0x40–0x7f. forge writes the hex straight into a DER INTEGER, which is
 * signed and must be minimally encoded, so the top bit must be clear (else the
 * serial reads as negative) and the first byte non-zero. 126 random bits
 * remain; the CA/Browser Forum asks for at least 64.
 */
export function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] & 0x3f) | 0x40;
  return bytes.toString('hex');
}
