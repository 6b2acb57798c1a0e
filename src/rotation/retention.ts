/**
 * Retention: how many versions of a secret the store keeps. Older versions
 * stay readable (a node still holding one, `hush secret rollback --to N`)
 * until a rotation pushes them out; the store applies this rule when it adds
 * a version. A version pushed out is gone with its wrapped data key: once the
 * log that still held it is compacted, its value cannot be recovered.
 */
import { HushError } from '../errors/index.js';

/** Enough for a few rotations in flight plus history to roll back to, at up to 500 KiB each. */
export const DEFAULT_KEEP_VERSIONS = 16;
/** A record holds every kept version; 1,000 of 500 KiB would be a half-gigabyte record. */
export const MAX_KEEP_VERSIONS = 1000;

export function assertKeepVersions(keep: number): void {
  // Keeping none would drop the version just made current.
  if (!Number.isInteger(keep) || keep < 1 || keep > MAX_KEEP_VERSIONS) throw new HushError('bad_request', `versions to keep must be a whole number from 1 to ${MAX_KEEP_VERSIONS}, not ${String(keep)}`);
}

/** The versions to keep, oldest first: the newest `keep` of `versions` (which are oldest first). */
export function retainVersions<T extends { version: number }>(versions: readonly T[], keep: number = DEFAULT_KEEP_VERSIONS): T[] {
  assertKeepVersions(keep);
  return versions.slice(-keep);
}
