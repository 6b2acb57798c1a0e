/**
 * One agent's session on the store side: what the node was sent, and the
 * ordered queue of sends, so a container decision always follows the Delta
 * that delivered its secrets.
 */
import type * as grpc from '@grpc/grpc-js';
import type { AgentMessage, StoreMessage, WireSecretVersion, WireServiceGrants } from '../protocol/index.js';

export interface DesiredState {
  /** Entitled secret name → latest version number. */
  versions: Map<string, number>;
  /** Service with containers on the node (and matching constraints) → its grants. */
  services: Map<string, WireServiceGrants>;
}

export class NodeSession {
  /** Secret name → version the node holds (as sent). */
  private sentVersions = new Map<string, number>();
  private sentServices = new Map<string, string>();
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
   * Sends what changed between what the node holds and `desired`: the first
   * call sends a Snapshot, later ones a Delta (nothing if nothing changed).
   * `reveal` decrypts a secret version only for what must be sent. Says what
   * it sent (for metrics), or undefined when nothing had changed.
   */
  async push(
    desired: DesiredState,
    storeRevision: number,
    reveal: (name: string, version: number) => Promise<WireSecretVersion>,
  ): Promise<{ kind: 'snapshot' | 'delta'; secretVersions: number } | undefined> {
    const upserts: WireSecretVersion[] = [];
    for (const [name, version] of desired.versions) {
      if (this.sentVersions.get(name) !== version) upserts.push(await reveal(name, version));
    }
    const removals = [...this.sentVersions.keys()].filter((name) => !desired.versions.has(name));
    const services = [...desired.services.values()].filter((s) => this.sentServices.get(s.service) !== JSON.stringify(s.grants));
    const removedServices = [...this.sentServices.keys()].filter((name) => !desired.services.has(name));
    if (this.snapshotSent && upserts.length + removals.length + services.length + removedServices.length === 0) return undefined;

    const revision = Math.max(storeRevision, this.lastRevision + 1);
    const kind = this.snapshotSent ? 'delta' : 'snapshot';
    if (!this.snapshotSent) {
      this.write({ body: 'snapshot', snapshot: { revision, secrets: upserts, services: [...desired.services.values()], heartbeat_period_ms: this.heartbeatPeriodMs } });
      this.snapshotSent = true;
    } else {
      this.write({ body: 'delta', delta: { revision, upserts, removals, services, removed_services: removedServices } });
    }
    this.lastRevision = revision;
    for (const { name, version } of upserts) this.delivered.set(name, Math.max(version, this.delivered.get(name) ?? 0));
    this.sentVersions = new Map(desired.versions);
    this.unacked.push({ revision, versions: this.sentVersions });
    this.sentServices = new Map([...desired.services.values()].map((s) => [s.service, JSON.stringify(s.grants)]));
    return { kind, secretVersions: upserts.length };
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
