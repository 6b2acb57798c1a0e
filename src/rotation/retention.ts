/**
 * Retention: how many versions of a secret the store keeps. Older versions
 * stay readable (`reveal NAME --version N`, a node still holding one) until a
 * rotation pushes them out; the store applies this rule when it adds a version.
 */
import { HushError } from '../errors/index.js';

/** Enough for a few rotations in flight plus history to roll back to, at up to 500 KiB each. */
export const DEFAULT_KEEP_VERSIONS = 16;

/** The versions to keep, oldest first: the newest `keep` of `versions` (which are oldest first). */
export function retainVersions<T extends { version: number }>(versions: readonly T[], keep: number = DEFAULT_KEEP_VERSIONS): T[] {
  // Keeping none would drop the version just made current.
  if (!Number.isInteger(keep) || keep < 1) throw new HushError('bad_request', `versions to keep must be a whole number of at least 1, not ${String(keep)}`);
  return versions.slice(-keep);
}
