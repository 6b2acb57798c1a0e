import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Constant-time string equality. timingSafeEqual needs equal lengths, and
 * returning early on a length mismatch would leak the length, so both sides
 * are hashed first: the comparison then always covers 32 bytes.
 */
export function secretsEqual(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(a), digest(b));
}
