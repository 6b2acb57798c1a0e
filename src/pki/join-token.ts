/**
 * Join tokens, as in Docker Swarm (SWMTKN-1-<CA digest>-<secret>):
 *   HUSH-1-<64 hex: SHA-256 fingerprint of the cluster CA>-<32 base32 chars>
 * The fingerprint lets a new agent authenticate the store's CA before it
 * trusts anything the store says; the secret lets the store authenticate the
 * agent before it signs its CSR. The "1" versions the format.
 */
import { randomBytes } from 'node:crypto';
import { HushError } from '../errors/index.js';

const PREFIX = 'HUSH-1-';
// RFC 4648 base32, lower case: no 0/1/8/9 to confuse with O/I/B/g when a token is read aloud or retyped.
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const SECRET_BYTES = 20; // 160 bits, exactly 32 base32 characters
const TOKEN = /^HUSH-1-([0-9a-fA-F]{64})-([a-zA-Z2-7]{32})$/;
const MALFORMED = 'malformed join token: expected HUSH-1-<ca fingerprint>-<secret>';

export interface JoinToken {
  caFingerprint: string;
  secret: string;
}

export function newJoinSecret(): string {
  const bytes = randomBytes(SECRET_BYTES);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1; // keep only the bits not yet emitted, so `value` never overflows
  }
  return out;
}

export function formatJoinToken(caFingerprint: string, secret: string): string {
  const token = `${PREFIX}${caFingerprint.toLowerCase()}-${secret}`;
  // Parsing what we format guarantees the store never hands out a token the agent would refuse.
  parseJoinToken(token);
  return token;
}

/** Surrounding whitespace (a token pasted or read from a file) is ignored; case is normalized. */
export function parseJoinToken(token: string): JoinToken {
  const match = TOKEN.exec(token.trim());
  if (!match) throw new HushError('bad_request', MALFORMED);
  return { caFingerprint: match[1]!.toLowerCase(), secret: match[2]!.toLowerCase() };
}
