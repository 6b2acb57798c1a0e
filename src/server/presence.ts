/**
 * Which replica each node is connected to, when several store replicas share
 * one etcd. Each replica serves only the sessions opened on it; to answer
 * `hush node ls` for every node, it records its own sessions in the shared
 * store (`node-sessions/<node id>` → replica) and says it is alive
 * (`replicas/<id>`, rewritten every heartbeat period), and learns the other
 * replicas' from the change feed.
 *
 * Each replica also shares what the nodes it serves acknowledged holding
 * (`node-acks/<node id>`, at most one write per node per ACK_SHARE_MS), so
 * that any replica can say where a version has arrived (`--wait`, the
 * propagation view). Another replica's acks of a node count only while the
 * node's session is live on that replica.
 *
 * A replica killed with -9 leaves its session records behind; they count only
 * while the replica that wrote them is seen alive (a record rewritten within
 * MISSED_HEARTBEATS_BEFORE_DOWN periods, timed by this replica's own clock on
 * arrival, so clocks need not agree). The node moves on its own: its agent
 * fails over and its new session overwrites the record.
 */
import type { Logger } from '../log/index.js';
import { MISSED_HEARTBEATS_BEFORE_DOWN } from '../protocol/index.js';
import type { AckedState } from '../rotation/index.js';
import { keys, type Backend, type ChangeBatch, type NodeAcksRecord, type NodeSessionRecord, type ReplicaRecord } from '../store/index.js';

/** Acks of one node are shared at most this often: a burst of rotations costs one write per node, not one per ack. */
const ACK_SHARE_MS = 50;
const ACKS_PER_COMMIT = 100;

export interface RemoteSession {
  replica: string;
  openedAt: string;
}

export class ReplicaPresence {
  private readonly sessions = new Map<string, NodeSessionRecord>();
  /** Replica id → when this replica last heard from it (local clock). */
  private readonly seen = new Map<string, number>();
  /** The revision at which this replica wrote each of its own session records, so a close removes only its own. */
  private readonly written = new Map<string, Promise<number | undefined>>();
  private timer: NodeJS.Timeout | undefined;
  private nodeAddress: string | undefined;
  /** Acks other replicas shared, by node. */
  private readonly remoteAcks = new Map<string, NodeAcksRecord>();
  /** Acks of this replica's nodes waiting to be shared (the latest per node), and the timer that writes them. */
  private readonly unshared = new Map<string, NodeAcksRecord>();
  private shareTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly replicaId: string,
    private readonly backend: Backend,
    private readonly periodMs: number,
    private readonly log: Logger,
  ) {}

  /** Loads what is recorded now, and starts saying this replica is alive. Call after subscribing to the change feed. */
  async start(): Promise<void> {
    const now = Date.now();
    for (const entry of await this.backend.list(keys.NODE_SESSION_PREFIX)) this.sessions.set(entry.key.slice(keys.NODE_SESSION_PREFIX.length), JSON.parse(entry.value) as NodeSessionRecord);
    for (const entry of await this.backend.list(keys.REPLICA_PREFIX)) this.seen.set(entry.key.slice(keys.REPLICA_PREFIX.length), now);
    for (const entry of await this.backend.list(keys.NODE_ACKS_PREFIX)) this.remoteAcks.set(entry.key.slice(keys.NODE_ACKS_PREFIX.length), JSON.parse(entry.value) as NodeAcksRecord);
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.periodMs);
    this.timer.unref();
  }

  setNodeAddress(address: string): void {
    this.nodeAddress = address;
    void this.beat();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.shareTimer);
    // A clean stop says so at once; a crash is noticed by the missed beats.
    await this.backend.commit({ ops: [{ type: 'delete', key: keys.replicaKey(this.replicaId) }] }).catch(() => undefined);
  }

  /** Feed of the shared store: other replicas' beats and sessions. */
  onChange(batch: ChangeBatch): void {
    for (const change of batch.changes) {
      if (change.kind === 'replica') {
        if (change.record) this.seen.set(change.id, Date.now());
        else this.seen.delete(change.id);
      } else if (change.kind === 'node-session') {
        if (change.record) this.sessions.set(change.nodeId, change.record);
        else this.sessions.delete(change.nodeId);
      } else if (change.kind === 'node-acks') {
        if (change.record) this.remoteAcks.set(change.nodeId, change.record);
        else this.remoteAcks.delete(change.nodeId);
      } else if (change.kind === 'revoked') {
        // Removed with its records (nodes.ts revoke): acks not yet shared would write one back.
        this.unshared.delete(change.id);
      }
    }
  }

  /** The live replica a node's session is open on, per the shared records (undefined: none). */
  remote(nodeId: string): RemoteSession | undefined {
    const record = this.sessions.get(nodeId);
    if (!record) return undefined;
    const seenAt = record.replica === this.replicaId ? Date.now() : this.seen.get(record.replica);
    if (seenAt === undefined || Date.now() - seenAt > MISSED_HEARTBEATS_BEFORE_DOWN * this.periodMs) return undefined;
    return record;
  }

  /** What a node acknowledged, as the replica serving its session shared it; undefined unless that session is live on another replica. */
  acksElsewhere(nodeId: string): AckedState | undefined {
    const record = this.remoteAcks.get(nodeId);
    const session = this.remote(nodeId);
    if (!record || !session || session.replica === this.replicaId || record.replica !== session.replica) return undefined;
    return { revision: record.revision, held: new Map(Object.entries(record.held).map(([secret, h]) => [secret, { version: h.version, at: new Date(h.at) }])) };
  }

  /** One of this replica's nodes acknowledged: shares what it holds now (coalesced per node). */
  shareAcks(nodeId: string, state: AckedState): void {
    const held: NodeAcksRecord['held'] = {};
    for (const [secret, h] of state.held) held[secret] = { version: h.version, at: h.at.toISOString() };
    this.unshared.set(nodeId, { replica: this.replicaId, revision: state.revision, held });
    this.shareTimer ??= setTimeout(() => void this.flushAcks(), ACK_SHARE_MS);
  }

  private async flushAcks(): Promise<void> {
    const records = [...this.unshared];
    this.unshared.clear();
    this.shareTimer = undefined;
    // In commits of at most ACKS_PER_COMMIT puts: etcd refuses a transaction of more than 128 operations by default.
    for (let i = 0; i < records.length; i += ACKS_PER_COMMIT) {
      const ops = records.slice(i, i + ACKS_PER_COMMIT).map(([nodeId, record]) => ({ type: 'put' as const, key: keys.nodeAcksKey(nodeId), value: JSON.stringify(record) }));
      await this.backend.commit({ ops }).catch((err: unknown) => {
        // The next ack of each node shares its whole state again; until then other replicas see these nodes a step behind.
        this.log.warn({ nodes: ops.length, err: (err as Error).message }, 'could not share node acknowledgements in the shared store');
      });
    }
  }

  opened(nodeId: string): void {
    const record: NodeSessionRecord = { replica: this.replicaId, openedAt: new Date().toISOString() };
    this.written.set(
      nodeId,
      this.backend.commit({ ops: [{ type: 'put', key: keys.nodeSessionKey(nodeId), value: JSON.stringify(record) }] }).catch((err: unknown) => {
        this.log.warn({ node: nodeId, err: (err as Error).message }, 'could not record the node session in the shared store');
        return undefined;
      }),
    );
  }

  closed(nodeId: string): void {
    const written = this.written.get(nodeId);
    this.written.delete(nodeId);
    void written?.then(async (revision) => {
      if (revision === undefined) return;
      // Only if it is still ours: the node may have opened a session on another replica meanwhile.
      await this.backend.commit({ conditions: [{ key: keys.nodeSessionKey(nodeId), modRevision: revision }], ops: [{ type: 'delete', key: keys.nodeSessionKey(nodeId) }] }).catch(() => undefined);
    });
  }

  private async beat(): Promise<void> {
    const record: ReplicaRecord = { id: this.replicaId, ...(this.nodeAddress ? { nodeAddress: this.nodeAddress } : {}), seenAt: new Date().toISOString() };
    await this.backend.commit({ ops: [{ type: 'put', key: keys.replicaKey(this.replicaId), value: JSON.stringify(record) }] }).catch((err: unknown) => {
      this.log.warn({ replica: this.replicaId, err: (err as Error).message }, 'could not record this replica as alive in the shared store');
    });
  }
}
