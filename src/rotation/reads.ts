/**
 * Who read what: per node, container, secret and version, when the container
 * first read that version and whether its mount still holds it (an open
 * file, a name the kernel still caches) or released it, and when. The agents
 * report it (aggregated, only when an entry changes); the dispatcher checks
 * a report against what the node was given and records it here; the admin
 * API answers "is anyone still using the old password?" from it.
 *
 * Kept in the store's memory, not in its log: it is an observation the agents
 * can repeat (each new session resends every entry of the containers still
 * running), it changes with every read of a new version on every node (a
 * durable write per report would put the whole cluster's reads through the
 * log and its compaction), and losing it loses no secret and no decision.
 * What a restart loses is the history of containers that stopped before it.
 * Bounded: the oldest-updated entries go first past the limits.
 */

export interface ReadReportEntry {
  container: string;
  /** The container's service, as the store registered it (not as the agent says). */
  service: string;
  secret: string;
  version: number;
  firstReadAt: Date;
  /** null while the container's mount still holds the version. */
  releasedAt: Date | null;
}

export interface ReadRecord {
  /** The node's id. */
  node: string;
  /** The node's name, filled in by whoever knows it (the dispatcher). */
  nodeName?: string;
  container: string;
  /** Who the container is to its runtime (Docker's id and name), filled in from the node's record when known. */
  runtime?: { runtime: string; id: string; name: string };
  service: string;
  secret: string;
  version: number;
  firstReadAt: string;
  state: 'held' | 'released';
  /** When the kernel released the version (or the container's mount went); null while held. */
  releasedAt: string | null;
  /** When the node last reported this entry. */
  reportedAt: string;
}

export interface ReadLedgerLimits {
  /** Entries kept in all. ~250 bytes each: 100,000 is ~25 MiB. */
  maxEntries: number;
  /** Entries kept per node, so one node cannot push out everyone else's. */
  maxPerNode: number;
}

export const DEFAULT_READ_LEDGER_LIMITS: Readonly<ReadLedgerLimits> = { maxEntries: 100_000, maxPerNode: 10_000 };

interface Held {
  node: string;
  container: string;
  service: string;
  secret: string;
  version: number;
  firstReadAt: number;
  releasedAt: number | null;
  reportedAt: number;
}

const keyOf = (node: string, container: string, secret: string, version: number) => `${node}\u0000${container}\u0000${secret}\u0000${version}`;

export class ReadLedger {
  /** In order of last update, oldest first: the first entries are the ones to evict. */
  readonly #entries = new Map<string, Held>();
  readonly #perNode = new Map<string, number>();
  readonly #limits: ReadLedgerLimits;

  constructor(limits: Partial<ReadLedgerLimits> = {}) {
    this.#limits = { ...DEFAULT_READ_LEDGER_LIMITS, ...limits };
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Records what `node` reported. The earliest first read wins, and a release
   * is final (a version released by the kernel is never current again in that
   * mount): a repeated or reordered report changes nothing.
   */
  record(node: string, entry: ReadReportEntry, at: Date): void {
    const key = keyOf(node, entry.container, entry.secret, entry.version);
    const known = this.#entries.get(key);
    const firstReadAt = entry.firstReadAt.getTime();
    const releasedAt = entry.releasedAt?.getTime() ?? null;
    if (known) {
      this.#entries.delete(key);
      known.firstReadAt = Math.min(known.firstReadAt, firstReadAt);
      if (known.releasedAt === null) known.releasedAt = releasedAt;
      else if (releasedAt !== null) known.releasedAt = Math.min(known.releasedAt, releasedAt);
      known.reportedAt = at.getTime();
      this.#entries.set(key, known);
      return;
    }
    this.#entries.set(key, { node, container: entry.container, service: entry.service, secret: entry.secret, version: entry.version, firstReadAt, releasedAt, reportedAt: at.getTime() });
    this.#perNode.set(node, (this.#perNode.get(node) ?? 0) + 1);
    if ((this.#perNode.get(node) ?? 0) > this.#limits.maxPerNode) this.#evictOldest((e) => e.node === node);
    if (this.#entries.size > this.#limits.maxEntries) this.#evictOldest(() => true);
  }

  /** The node was removed: what it reported goes with it. */
  forgetNode(node: string): void {
    for (const [key, entry] of this.#entries) if (entry.node === node) this.#entries.delete(key);
    this.#perNode.delete(node);
  }

  /** Entries (of one secret, if given), by secret, version, node and container. */
  list(query: { secret?: string } = {}): ReadRecord[] {
    const out: ReadRecord[] = [];
    for (const e of this.#entries.values()) {
      if (query.secret !== undefined && e.secret !== query.secret) continue;
      out.push({
        node: e.node,
        container: e.container,
        service: e.service,
        secret: e.secret,
        version: e.version,
        firstReadAt: new Date(e.firstReadAt).toISOString(),
        state: e.releasedAt === null ? 'held' : 'released',
        releasedAt: e.releasedAt === null ? null : new Date(e.releasedAt).toISOString(),
        reportedAt: new Date(e.reportedAt).toISOString(),
      });
    }
    return out.sort((a, b) => a.secret.localeCompare(b.secret) || a.version - b.version || a.node.localeCompare(b.node) || a.container.localeCompare(b.container));
  }

  #evictOldest(pick: (entry: Held) => boolean): void {
    for (const [key, entry] of this.#entries) {
      if (!pick(entry)) continue;
      this.#entries.delete(key);
      const left = (this.#perNode.get(entry.node) ?? 1) - 1;
      if (left > 0) this.#perNode.set(entry.node, left);
      else this.#perNode.delete(entry.node);
      return;
    }
  }
}
