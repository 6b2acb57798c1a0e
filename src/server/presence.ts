/**
 * Which replica each node is connected to, when several store replicas share
 * one etcd. Each replica serves only the sessions opened on it; to answer
 * `hush node ls` for every node, it records its own sessions in the shared
 * store (`node-sessions/<node id>` → replica) and says it is alive
 * (`replicas/<id>`, rewritten every heartbeat period), and learns the other
 * replicas' from the change feed.
 *
 * A replica killed with -9 leaves its session records behind; they count only
 * while the replica that wrote them is seen alive (a record rewritten within
 * MISSED_HEARTBEATS_BEFORE_DOWN periods, timed by this replica's own clock on
 * arrival, so clocks need not agree). The node moves on its own: its agent
 * fails over and its new session overwrites the record.
 */
import type { Logger } from '../log/index.js';
import { MISSED_HEARTBEATS_BEFORE_DOWN } from '../protocol/index.js';
import { keys, type Backend, type ChangeBatch, type NodeSessionRecord, type ReplicaRecord } from '../store/index.js';

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
