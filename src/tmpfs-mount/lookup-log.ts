/**
 * Who looked up which version of which file in one mount, for the audit of
 * who read what: the first LOOKUP of each version's node (with the caller the
 * kernel named in the request header) and when the kernel released an old
 * version (its FORGET). A lookup is what we can see: with the page cache and
 * no_open, byte reads of a cached version never reach the agent, and `stat`
 * or `ls -l` count as much as `cat`. Names, versions and times only.
 */
import type { LookupRecord } from './types.js';

/** Records beyond this go, oldest first: one per version looked up, so years of hourly rotations of a few files. */
const MAX_LOOKUP_RECORDS = 1024;
/** What is known of nodes not (yet) looked up: enough for every version a mount can hold at once. */
const MAX_KNOWN_NODES = 8192;

interface Known {
  file: string;
  secret: string;
  version: number;
  /** A release reported before the lookup that preceded it (the reports travel separately). */
  releasedAt: string | null;
}

/**
 * A node is known from the moment its version gets one, so that reports from
 * the serving threads, which arrive later and possibly after the node is
 * gone, always find what they are about.
 */
export class LookupLog {
  readonly #known = new Map<number, Known>();
  readonly #records = new Map<number, LookupRecord>();

  created(node: number, file: { name: string; source: string; version: number }): void {
    this.#known.set(node, { file: file.name, secret: file.source, version: file.version, releasedAt: null });
    if (this.#known.size > MAX_KNOWN_NODES) this.#known.delete(this.#known.keys().next().value!);
  }

  /** The earliest report wins (each serving thread reports its first lookup of a node). */
  lookup(node: number, caller: { pid: number; uid: number; gid: number; at: number }): void {
    const firstLookup = { at: new Date(caller.at).toISOString(), pid: caller.pid, uid: caller.uid, gid: caller.gid };
    const record = this.#records.get(node);
    if (record) {
      if (firstLookup.at < record.firstLookup.at) record.firstLookup = firstLookup;
      return;
    }
    const known = this.#known.get(node);
    if (!known) return;
    this.#records.set(node, { file: known.file, secret: known.secret, version: known.version, firstLookup, releasedAt: known.releasedAt });
    if (this.#records.size > MAX_LOOKUP_RECORDS) this.#records.delete(this.#records.keys().next().value!);
  }

  released(node: number, at = new Date()): void {
    const record = this.#records.get(node);
    if (record) record.releasedAt ??= at.toISOString();
    const known = this.#known.get(node);
    if (known) known.releasedAt ??= at.toISOString();
  }

  /** Versions that were looked up, in the order of their first lookup's report; copies. */
  list(): LookupRecord[] {
    return [...this.#records.values()].map((r) => ({ ...r, firstLookup: { ...r.firstLookup } }));
  }
}
