/**
 * Generated values (`hush secret rotate NAME --generate BYTES`): raw random
 * bytes from a source the caller injects (node:crypto in the store, a fixed
 * stream in tests), so the policy is testable and the store decides where
 * randomness comes from.
 */
import { HushError } from '../errors/index.js';

/** Returns `n` bytes from a cryptographically secure generator. */
export type RandomSource = (n: number) => Uint8Array;

export const MIN_GENERATE_BYTES = 1;
/**
 * 4 KiB: far above any key or password length (a 256-bit key is 32 bytes),
 * and small enough that a request cannot make the store produce and seal
 * megabytes of randomness.
 */
export const MAX_GENERATE_BYTES = 4096;

export function generateValue(bytes: number, random: RandomSource): Uint8Array {
  if (!Number.isInteger(bytes) || bytes < MIN_GENERATE_BYTES || bytes > MAX_GENERATE_BYTES) {
    throw new HushError('bad_request', `generate: give a whole number of bytes from ${MIN_GENERATE_BYTES} to ${MAX_GENERATE_BYTES}, not ${String(bytes)}`);
  }
  const value = random(bytes);
  // A short read from the source would silently weaken the secret.
  if (value.length !== bytes) throw new HushError('internal', `the random source gave ${value.length} bytes instead of ${bytes}`);
  return value;
}
