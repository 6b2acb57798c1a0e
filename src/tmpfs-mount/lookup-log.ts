/**
 * Who looked up which version of which file in one mount, for the audit of
 * who read what: the first LOOKUP of each version's node (with the caller the
 * kernel named in the request header) and when the kernel released an old
 * version (its FORGET). A lookup is what we can see: with the page cache and
 * no_open, byte reads of a cached version never reach the agent, and `stat`
 * or `ls -l` count as much as `cat`. Names, versions and times only.
 */
import type { LookupRecord } from './types.js';

/** Oldest versions go first beyond this: one entry per version per file, so years of hourly rotations of a few files. */
export const MAX_LOOKUP_RECORDS = 1024;

interface Entry {
  file: string;
  secret: string;
  version: number;
  firstLookup: LookupRecord['firstLookup'] | null;
  releasedAt: string | null;
}

/**
 * Entries exist from the moment a version gets its node, so that reports
 * from the serving threads (which arrive asynchronously, possibly after the
 * node is gone) always find theirs.
 */
export class LookupLog {
  readonly #entries = new Map<number, Entry>();

  created(node: number, file: { name: string; source: string; version: number }): void {
    this.#entries.set(node, { file: file.name, secret: file.source, version: file.version, firstLookup: null, releasedAt: null });
    if (this.#entries.size > MAX_LOOKUP_RECORDS) this.#entries.delete(this.#entries.keys().next().value!);
  }

  /** The earliest report wins (each serving thread reports its first lookup of a node). */
  lookup(node: number, caller: { pid: number; uid: number; gid: number; at: number }): void {
    const entry = this.#entries.get(node);
    if (!entry) return;
    const at = new Date(caller.at).toISOString();
    if (entry.firstLookup === null || at < entry.firstLookup.at) entry.firstLookup = { at, pid: caller.pid, uid: caller.uid, gid: caller.gid };
  }

  released(node: number, at = new Date()): void {
    const entry = this.#entries.get(node);
    if (entry && entry.releasedAt === null) entry.releasedAt = at.toISOString();
  }

  /** Versions that were looked up, oldest first; copies. */
  list(): LookupRecord[] {
    const records: LookupRecord[] = [];
    for (const e of this.#entries.values()) {
      if (e.firstLookup !== null) records.push({ file: e.file, secret: e.secret, version: e.version, firstLookup: { ...e.firstLookup }, releasedAt: e.releasedAt });
    }
    return records;
  }
}
