/**
 * Who read what, reported to the store. Each container's mount records the
 * first lookup of every secret version and when the kernel released an old
 * one (src/tmpfs-mount/lookup-log.ts); this module folds that into one entry
 * per container, secret and version (first read; still held, or released and
 * when) and sends the store the entries that changed since it last heard
 * them: once a second at most, MAX_READ_ENTRIES_PER_REPORT at a time, never
 * one message per read. Names, versions and times only: the mount's records
 * hold no value, and neither do these.
 *
 * A new session hears every entry again (the store keeps them in memory and
 * may have restarted). A stopping container's entries are taken from its
 * mount before it goes and sent at once, released at the stop.
 */
import { MAX_READ_ENTRIES_PER_REPORT, type WireReadEntry } from '../protocol/index.js';
import type { LookupRecord } from '../tmpfs-mount/index.js';

export const DEFAULT_READ_REPORT_INTERVAL_MS = 1_000;
/** Entries of stopped containers waiting for a session; past this the oldest go (a store that is away that long has lost the containers too). */
const MAX_PENDING_FINAL_ENTRIES = 10_000;

export interface ContainerReads {
  id: string;
  /** The mount's records; null when the mount cannot see lookups (fuse-native) or there is no mount. */
  lookups: LookupRecord[] | null;
}

export interface ReadReporterOptions {
  /** The registered containers and what their mounts recorded. */
  containers: () => ContainerReads[];
  /** Sends one report; false when there is no session to send it on. */
  send: (entries: WireReadEntry[]) => boolean;
  intervalMs?: number;
}

const keyOf = (e: WireReadEntry) => `${e.container_id}\u0000${e.secret}\u0000${e.version}`;
const stateOf = (e: WireReadEntry) => `${e.first_read_at_ms}/${e.released_at_ms}`;

/**
 * One entry per secret version a container looked up: the earliest first
 * lookup over its files, and held while any of its files' nodes is held
 * (released: the last release). `stoppedAt` releases what is still held.
 * Rendered templates are skipped: their "versions" are the node's own
 * renderings, not versions the store knows.
 */
export function readEntries(containerId: string, lookups: readonly LookupRecord[], stoppedAt?: number): WireReadEntry[] {
  const byVersion = new Map<string, WireReadEntry>();
  for (const record of lookups) {
    if (record.secret.includes('/')) continue;
    const first = Date.parse(record.firstLookup.at);
    const released = record.releasedAt === null ? (stoppedAt ?? 0) : Date.parse(record.releasedAt);
    const key = `${record.secret}\u0000${record.version}`;
    const known = byVersion.get(key);
    if (!known) {
      byVersion.set(key, { container_id: containerId, secret: record.secret, version: record.version, first_read_at_ms: first, released_at_ms: released });
      continue;
    }
    known.first_read_at_ms = Math.min(known.first_read_at_ms, first);
    known.released_at_ms = known.released_at_ms === 0 || released === 0 ? 0 : Math.max(known.released_at_ms, released);
  }
  // A release is never before the first read (the two are timed on different threads).
  for (const e of byVersion.values()) if (e.released_at_ms !== 0) e.released_at_ms = Math.max(e.released_at_ms, e.first_read_at_ms);
  return [...byVersion.values()];
}

export class ReadReporter {
  readonly #opts: ReadReporterOptions;
  /** Container → entry key → the state the store last heard. */
  readonly #sent = new Map<string, Map<string, string>>();
  /** Entries of stopped containers not sent yet, in stop order. */
  readonly #final = new Map<string, WireReadEntry>();
  readonly #timer: NodeJS.Timeout;

  constructor(opts: ReadReporterOptions) {
    this.#opts = opts;
    this.#timer = setInterval(() => this.flush(), opts.intervalMs ?? DEFAULT_READ_REPORT_INTERVAL_MS).unref();
  }

  /** A new session: it hears every entry again; stopped containers' entries it would not know (the session starts from the Hello) go. */
  resend(): void {
    this.#sent.clear();
    this.#final.clear();
  }

  /** A container is about to go: its mount's records, released now, go out at once (before the store hears of the stop). */
  stopped(containerId: string, lookups: LookupRecord[] | null): void {
    for (const entry of readEntries(containerId, lookups ?? [], Date.now())) {
      const key = keyOf(entry);
      if (this.#sent.get(containerId)?.get(key) === stateOf(entry)) continue;
      this.#final.delete(key);
      this.#final.set(key, entry);
    }
    this.#sent.delete(containerId);
    while (this.#final.size > MAX_PENDING_FINAL_ENTRIES) this.#final.delete(this.#final.keys().next().value!);
    this.flush();
  }

  /** Sends one report of what changed (stopped containers' entries first); the rest waits for the next tick. */
  flush(): void {
    const running = this.#opts.containers();
    const changed: WireReadEntry[] = [...this.#final.values()].slice(0, MAX_READ_ENTRIES_PER_REPORT);
    for (const { id, lookups } of running) {
      if (changed.length >= MAX_READ_ENTRIES_PER_REPORT) break;
      const sent = this.#sent.get(id);
      for (const entry of readEntries(id, lookups ?? [])) {
        if (sent?.get(keyOf(entry)) === stateOf(entry)) continue;
        changed.push(entry);
        if (changed.length >= MAX_READ_ENTRIES_PER_REPORT) break;
      }
    }
    // Containers that went without a stop (the agent shutting down) are forgotten.
    const ids = new Set(running.map((c) => c.id));
    for (const id of this.#sent.keys()) if (!ids.has(id)) this.#sent.delete(id);
    if (changed.length === 0 || !this.#opts.send(changed)) return;
    for (const entry of changed) {
      const key = keyOf(entry);
      if (this.#final.delete(key)) continue;
      let sent = this.#sent.get(entry.container_id);
      if (!sent) this.#sent.set(entry.container_id, (sent = new Map()));
      sent.set(key, stateOf(entry));
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
