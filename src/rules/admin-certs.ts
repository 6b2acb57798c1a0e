/**
 * Rules for admin client certificates that the CLI and the store both apply:
 * names, and lifetimes written as durations ("30d", "12h"). Pure and light,
 * so the CLI can refuse bad input before it asks the store for anything.
 */
import { HushError } from '../errors/index.js';

/**
 * 30 days: short enough that a certificate copied off a laptop stops working
 * on its own within a month, long enough that people are not renewing weekly.
 * Revocation (`hush cert revoke`) covers the time in between.
 */
export const DEFAULT_ADMIN_CERT_SECONDS = 30 * 86_400;
/** No admin certificate lives longer than 90 days, whatever is asked for. */
export const MAX_ADMIN_CERT_SECONDS = 90 * 86_400;
/** Shorter would expire between issuing and first use on a slow link; the store's renewal timer also needs room. */
export const MIN_ADMIN_CERT_SECONDS = 10;

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** "90d", "12h", "30m", "45s" → seconds. One number and one unit: no "1d12h", no fractions. */
export function parseDuration(text: string): number {
  const match = /^(\d{1,9})([smhd])$/.exec(text.trim());
  if (!match) throw new HushError('bad_request', `"${text}" is not a duration: use a whole number and a unit, e.g. 30d, 12h, 45m, 90s`);
  return Number(match[1]) * UNIT_SECONDS[match[2]];
}

/** Throws with the limits in the message unless `seconds` is an admin certificate lifetime we issue. */
export function assertAdminCertLifetime(seconds: unknown): asserts seconds is number {
  if (typeof seconds !== 'number' || !Number.isInteger(seconds)) throw new HushError('bad_request', 'certificate lifetime must be a whole number of seconds');
  if (seconds < MIN_ADMIN_CERT_SECONDS) throw new HushError('bad_request', `certificate lifetime ${formatDuration(seconds)} is too short; the minimum is ${MIN_ADMIN_CERT_SECONDS}s`);
  if (seconds > MAX_ADMIN_CERT_SECONDS) {
    throw new HushError('bad_request', `certificate lifetime ${formatDuration(seconds)} is longer than the maximum of 90d; issue a shorter one and renew it (\`hush cert renew\`)`);
  }
}

/** Seconds back to the largest whole unit, for messages: 2592000 → "30d". */
export function formatDuration(seconds: number): string {
  for (const unit of ['d', 'h', 'm'] as const) if (seconds % UNIT_SECONDS[unit] === 0 && seconds >= UNIT_SECONDS[unit]) return `${seconds / UNIT_SECONDS[unit]}${unit}`;
  return `${seconds}s`;
}

/** Same shape as a serial (32 hex digits): refused as a name so that `hush cert revoke NAME|SERIAL` is never ambiguous. */
const SERIAL_LIKE = /^[0-9a-fA-F]{32}$/;
const CERT_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.@-]*$/;
export const MAX_CERT_NAME_LENGTH = 64;

/** A certificate name becomes the CN and appears in URLs and tables: letters, digits, "_", ".", "@", "-". */
export function assertValidCertName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) throw new HushError('invalid_name', 'certificate name is required');
  if (name.length > MAX_CERT_NAME_LENGTH) throw new HushError('invalid_name', `certificate name "${name.slice(0, 80)}" is longer than ${MAX_CERT_NAME_LENGTH} characters`);
  if (!CERT_NAME.test(name)) throw new HushError('invalid_name', `invalid certificate name "${name}": use letters, digits, "_", ".", "@" and "-", starting with a letter or digit`);
  if (SERIAL_LIKE.test(name)) throw new HushError('invalid_name', `certificate name "${name}" looks like a serial number (32 hex digits); choose another`);
}
