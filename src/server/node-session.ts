/**
 * One agent's session on the store side: what the node was sent, and the
 * ordered queue of sends, so a container decision always follows the Delta
 * that delivered its secrets.
 */
import type * as grpc from '@grpc/grpc-js';
import type { AgentMessage, StoreMessage, WireHello, WireSecretVersion, WireServiceGrants } from '../protocol/index.js';

/** What a resuming agent says it holds (its Hello), as the session compares it with what it should hold. */
export interface HeldState {
  revision: number;
  versions: Map<string, number>;
  ids: Map<string, string>;
  services: string[];
}

/** The held state a Hello names, or undefined when the agent did not ask to resume (or holds nothing to resume from). */
export function heldStateOf(hello: WireHello): HeldState | undefined {
  if (!hello.resume || !(hello.last_revision > 0)) return undefined;
  const held = hello.held ?? [];
  return {
    revision: hello.last_revision,
    versions: new Map(held.map((h) => [h.name, h.version])),
    ids: new Map(held.map((h) => [h.name, h.secret_id])),
    services: [...(hello.held_services ?? [])],
  };
}

export interface DesiredState {
  /** Entitled secret name → latest version number. */
  versions: Map<string, number>;
  /** Entitled secret name → the secret's id (with the version, it names one value: a recreated secret restarts at version 1). */
  ids: Map<string, string>;
  /** Service with containers on the node (and matching constraints) → its grants. */
  services: Map<string, WireServiceGrants>;
}

export class NodeSession {
  /** Secret name → version the node holds (as sent), and the secret's id. */
  private sentVersions = new Map<string, number>();
  private sentIds = new Map<string, string>();
  private sentServices = new Map<string, string>();
  /** Set by resume(): the first send is a Delta over what the agent holds at this revision. */
  private resumedFrom: number | undefined;
  private queue: Promise<void> = Promise.resolve();
  private lastRevision = 0;
  private snapshotSent = false;
  /** Sends not yet acknowledged, oldest first: the revision and the versions it left on the node. */
  private unacked: { revision: number; versions: ReadonlyMap<string, number> }[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  /**
   * Secret name → the newest version ever sent in this session: what the node
   * may report reads of (that version or an older one it may still hold).
   * Never shrinks within the session; one entry per secret.
   */
  readonly delivered = new Map<string, number>();
  /** Containers the store knew on this node during the session (Hello, allowed starts) → service, oldest first; bounded by `rememberContainer`. */
  readonly containers = new Map<string, string>();
  closed = false;
  ackedRevision = 0;
  lastHeartbeat = new Date();

  constructor(
    readonly nodeId: string,
    /** The client certificate the session was opened with (a CA retirement ends sessions of the retired CA). */
    readonly certPem: string,
    readonly stream: grpc.ServerDuplexStream<AgentMessage, StoreMessage>,
    /** Sent with the snapshot: the agent beats at this period. */
    private readonly heartbeatPeriodMs: number,
  ) {}

  /** Runs `retry` once after `delayMs` unless the session closed; a retry already waiting absorbs this one. */
  retryLater(delayMs: number, retry: () => void): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closed) retry();
    }, delayMs);
    this.retryTimer.unref();
  }

  /** Runs `work` after everything queued before it (sends stay in order). */
  enqueue(work: () => Promise<void>): Promise<void> {
    const next = this.queue.then(() => (this.closed ? undefined : work()));
    this.queue = next.catch(() => undefined);
    return next;
  }

  get revision(): number {
    return this.lastRevision;
  }

  /**
   * Takes what a resuming agent says it holds as what it was sent, so the
   * first push is a Delta over it instead of a Snapshot. Its services'
   * grants are not named in the Hello, so every service the node should run
   * is sent again (grants are small; values are what a resume saves), and
   * held ones it should not run are removed. Too late once something was
   * sent (a change reached the session before its Hello): that Snapshot
   * stands, and this says false.
   */
  resume(held: HeldState): boolean {
    if (this.snapshotSent) return false;
    this.sentVersions = new Map(held.versions);
    this.sentIds = new Map(held.ids);
    // No grants string ever equals '', so each desired service counts as changed.
    this.sentServices = new Map(held.services.map((name) => [name, '']));
    this.resumedFrom = held.revision;
    return true;
  }

  /**
   * Sends what changed between what the node holds and `desired`: the first
   * call sends a Snapshot (a Delta over the held state after resume()), later
   * ones a Delta (nothing if nothing changed). A version is resent when its
   * number or its secret's id differ from what the node holds. `reveal`
   * decrypts a secret version only for what must be sent. Says what it sent
   * (for metrics), or undefined when nothing had changed.
   */
  async push(
    desired: DesiredState,
    storeRevision: number,
    reveal: (name: string, version: number) => Promise<WireSecretVersion & { secret_id: string }>,
  ): Promise<{ kind: 'snapshot' | 'delta'; secretVersions: number; resumed: boolean } | undefined> {
    const upserts: WireSecretVersion[] = [];
    const sentIds = new Map<string, string>();
    const sentVersions = new Map<string, number>();
    for (const [name, version] of desired.versions) {
      const id = desired.ids.get(name) ?? '';
      if (this.sentVersions.get(name) === version && this.sentIds.get(name) === id) {
        sentVersions.set(name, version);
        sentIds.set(name, id);
        continue;
      }
      const wire = await reveal(name, version);
      // What goes on the wire is what the node will hold, even if the secret moved since `desired` was read.
      upserts.push(wire);
      sentVersions.set(name, wire.version);
      sentIds.set(name, wire.secret_id);
    }
    const removals = [...this.sentVersions.keys()].filter((name) => !desired.versions.has(name));
    const services = [...desired.services.values()].filter((s) => this.sentServices.get(s.service) !== JSON.stringify(s.grants));
    const removedServices = [...this.sentServices.keys()].filter((name) => !desired.services.has(name));
    const first = !this.snapshotSent;
    if (!first && upserts.length + removals.length + services.length + removedServices.length === 0) return undefined;

    const resumedFrom = first ? this.resumedFrom : undefined;
    // A resumed session's first revision may equal the one resumed from (nothing changed since); after that revisions grow.
    const revision = resumedFrom !== undefined ? Math.max(storeRevision, resumedFrom) : Math.max(storeRevision, this.lastRevision + 1);
    if (first && resumedFrom === undefined) {
      this.write({ body: 'snapshot', snapshot: { revision, secrets: upserts, services: [...desired.services.values()], heartbeat_period_ms: this.heartbeatPeriodMs } });
    } else {
      const resume = resumedFrom !== undefined ? { base_revision: resumedFrom, heartbeat_period_ms: this.heartbeatPeriodMs } : {};
      this.write({ body: 'delta', delta: { revision, upserts, removals, services, removed_services: removedServices, ...resume } });
    }
    this.snapshotSent = true;
    this.lastRevision = revision;
    this.sentVersions = sentVersions;
    this.sentIds = sentIds;
    // What the node holds now, sent in this session or kept from before a resume: it may report reads of these.
    for (const [name, version] of sentVersions) this.delivered.set(name, Math.max(version, this.delivered.get(name) ?? 0));
    this.unacked.push({ revision, versions: this.sentVersions });
    this.sentServices = new Map([...desired.services.values()].map((s) => [s.service, JSON.stringify(s.grants)]));
    return { kind: first && resumedFrom === undefined ? 'snapshot' : 'delta', secretVersions: upserts.length, resumed: resumedFrom !== undefined };
  }

  /**
   * The node acknowledged `revision`: it holds what the last send up to that
   * revision left it with. Returns those versions (undefined if no send is
   * covered, e.g. a repeated ack), and forgets the sends it covers.
   */
  acknowledge(revision: number): ReadonlyMap<string, number> | undefined {
    let held: ReadonlyMap<string, number> | undefined;
    while (this.unacked.length > 0 && this.unacked[0]!.revision <= revision) held = this.unacked.shift()!.versions;
    return held;
  }

  /**
   * A container the node may report reads for, also after it stops (its last
   * report can follow its stop). Keeps at most `max`, the oldest going first.
   */
  rememberContainer(id: string, service: string, max: number): void {
    this.containers.delete(id);
    this.containers.set(id, service);
    if (this.containers.size > max) this.containers.delete(this.containers.keys().next().value!);
  }

  write(message: StoreMessage): void {
    if (!this.closed) this.stream.write(message);
  }
}
