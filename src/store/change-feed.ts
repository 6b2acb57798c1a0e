/**
 * What changed in the store, as typed events: the backend reports each
 * durable commit as key operations, and this decodes them once (keys.ts is
 * the only layout) so that no listener parses keys. Records that listeners
 * need to act on (services, nodes, admin certificates) come decoded; a
 * secret's record does not (it holds every retained version, sealed, and the
 * listeners only need to know which secret moved).
 */
import type { AdminCertRecord } from './admin-certs.js';
import type { Backend, KvEvent, KvOp } from './backend.js';
import { ADMIN_CERT_PREFIX, CA_CERT_KEY, CA_PREVIOUS_KEY, KEYRING_KEY, NODE_LABELS_PREFIX, NODE_ACKS_PREFIX, NODE_PREFIX, NODE_SESSION_PREFIX, REPLICA_PREFIX, REVOKED_PREFIX, SECRET_PREFIX, SERVICE_PREFIX } from './keys.js';
import type { NodeRecord } from './nodes.js';
import type { ServiceRecord } from './services.js';

export type StoreChange =
  /** A secret was created, given a new version, relabelled, re-wrapped, or (`removed`) deleted. */
  | { kind: 'secret'; name: string; removed: boolean }
  /** A service was written (`record`) or removed (no record). */
  | { kind: 'service'; name: string; record?: ServiceRecord }
  /** A node record was written (joined, containers changed) or removed (no record). */
  | { kind: 'node'; id: string; record?: NodeRecord }
  /** The admin labels of a node name changed. */
  | { kind: 'node-labels'; name: string }
  /** A node was revoked. */
  | { kind: 'revoked'; id: string }
  /** An admin certificate record was written (issued, revoked, superseded) or removed (no record). */
  | { kind: 'admin-cert'; serial: string; record?: AdminCertRecord }
  /** A store replica on shared storage said it is alive (`record`), or left (no record). */
  | { kind: 'replica'; id: string; record?: ReplicaRecord }
  /** A node's session opened on a replica (`record`), or closed (no record). */
  | { kind: 'node-session'; nodeId: string; record?: NodeSessionRecord }
  /** What a node acknowledged holding, shared by the replica serving it (shared storage only). */
  | { kind: 'node-acks'; nodeId: string; record?: NodeAcksRecord }
  /** The sealed keyring was written (a KEK rotation, maybe by another replica). */
  | { kind: 'keyring' }
  /** The cluster CA's records were written: a CA rotation started (maybe through another replica), or its previous CA was retired. */
  | { kind: 'ca' };

/** A store replica on shared storage (etcd), rewritten every heartbeat period while it runs. */
export interface ReplicaRecord {
  id: string;
  /** Its node-protocol address, as it listens. */
  nodeAddress?: string;
  seenAt: string;
}

/** Where a node's session is open (shared storage only: each replica serves its own sessions). */
export interface NodeSessionRecord {
  replica: string;
  openedAt: string;
}

/**
 * What a node acknowledged holding, as the replica serving its session
 * shares it so that every replica can answer "where has version N arrived?"
 * (shared storage only). Names and versions, never a value.
 */
export interface NodeAcksRecord {
  replica: string;
  revision: number;
  /** Secret name → the version held and when the node first acknowledged it (ISO time). */
  held: Record<string, { version: number; at: string }>;
}

export interface ChangeBatch {
  /** The revision of the commit. */
  revision: number;
  changes: StoreChange[];
}

/** The typed changes of one commit, in the order of its operations; keys of no interest to listeners are left out. */
export function decodeChanges(event: KvEvent): ChangeBatch {
  const changes: StoreChange[] = [];
  for (const op of event.ops) {
    const change = decode(op);
    if (change) changes.push(change);
  }
  return { revision: event.revision, changes };
}

function decode(op: KvOp): StoreChange | undefined {
  const value = op.type === 'put' ? op.value : undefined;
  const rest = (prefix: string) => op.key.slice(prefix.length);
  if (op.key.startsWith(SECRET_PREFIX)) return { kind: 'secret', name: rest(SECRET_PREFIX), removed: op.type === 'delete' };
  if (op.key.startsWith(SERVICE_PREFIX)) return { kind: 'service', name: rest(SERVICE_PREFIX), record: value === undefined ? undefined : (JSON.parse(value) as ServiceRecord) };
  if (op.key.startsWith(NODE_PREFIX)) return { kind: 'node', id: rest(NODE_PREFIX), record: value === undefined ? undefined : (JSON.parse(value) as NodeRecord) };
  if (op.key.startsWith(NODE_LABELS_PREFIX)) return { kind: 'node-labels', name: rest(NODE_LABELS_PREFIX) };
  if (op.key.startsWith(REVOKED_PREFIX) && op.type === 'put') return { kind: 'revoked', id: rest(REVOKED_PREFIX) };
  if (op.key.startsWith(REPLICA_PREFIX)) return { kind: 'replica', id: rest(REPLICA_PREFIX), record: value === undefined ? undefined : (JSON.parse(value) as ReplicaRecord) };
  if (op.key.startsWith(NODE_ACKS_PREFIX)) return { kind: 'node-acks', nodeId: rest(NODE_ACKS_PREFIX), record: value === undefined ? undefined : (JSON.parse(value) as NodeAcksRecord) };
  if (op.key.startsWith(NODE_SESSION_PREFIX)) return { kind: 'node-session', nodeId: rest(NODE_SESSION_PREFIX), record: value === undefined ? undefined : (JSON.parse(value) as NodeSessionRecord) };
  if (op.key === KEYRING_KEY) return { kind: 'keyring' };
  if (op.key === CA_CERT_KEY || op.key === CA_PREVIOUS_KEY) return { kind: 'ca' };
  if (op.key.startsWith(ADMIN_CERT_PREFIX)) return { kind: 'admin-cert', serial: rest(ADMIN_CERT_PREFIX), record: value === undefined ? undefined : (JSON.parse(value) as AdminCertRecord) };
  return undefined;
}

/**
 * The store's change events. Watches the backend once (from the first
 * subscriber on) and hands every subscriber the same decoded batch, after
 * each durable commit and in revision order.
 */
export class ChangeFeed {
  private readonly listeners = new Set<(batch: ChangeBatch) => void>();
  private unwatch: (() => void) | undefined;

  constructor(private readonly backend: Backend) {}

  subscribe(listener: (batch: ChangeBatch) => void): () => void {
    this.listeners.add(listener);
    this.unwatch ??= this.backend.watch((event) => this.publish(event));
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) {
        this.unwatch?.();
        this.unwatch = undefined;
      }
    };
  }

  private publish(event: KvEvent): void {
    const batch = decodeChanges(event);
    if (batch.changes.length === 0) return;
    // A copy: a listener that unsubscribes (or subscribes) while called does not upset this round.
    for (const listener of [...this.listeners]) listener(batch);
  }
}
