/**
 * Node records: identity (the id in the node's certificate), name, hostname,
 * the labels the agent reported about itself (engine labels), and the
 * containers it reported running. Removing a node revokes it: its id goes on
 * the revocation list and stays there.
 *
 * Admin labels (`node.labels`) are kept apart, per node *name*: agents keep no
 * identity on disk and join as a new node id after each restart, so labels
 * on the id would be lost; on the name they outlive the node records and
 * apply to whichever node holds the name (the store lets a node take a
 * labelled name only with that name's own join token).
 */
import { HushError } from '../errors/index.js';
import { ConflictError, type Backend } from './backend.js';
import { newObjectId } from './ids.js';
import { NODE_LABELS_PREFIX, NODE_PREFIX, nodeAcksKey, nodeKey, nodeLabelsKey, nodeSessionKey, revokedKey } from './keys.js';

export interface NodeContainer {
  id: string;
  service: string;
  /** Who it is to its runtime, as the node reported once it knew (e.g. runtime "docker", its container id and name); the server checks the formats. */
  runtime?: { runtime: string; id: string; name: string };
}

export interface NodeRecord {
  id: string;
  name: string;
  /** Self-reported at join. */
  hostname: string;
  /** Self-reported at join (`hush agent --label`): `engine.labels.K` in constraints, never `node.labels.K`. */
  engineLabels: Record<string, string>;
  role: 'node';
  containers: NodeContainer[];
  createdAt: string;
  updatedAt: string;
}

/** Admin labels of one node name. */
interface NodeNameLabels {
  name: string;
  labels: Record<string, string>;
  updatedAt: string;
}

const RETRIES = 10;

/**
 * Before retrying a conflicting commit. Reads see only durable state, so a
 * retry made at once reads the same old record while the winning commit is
 * still queued for its fsync, and fails again: a burst of container starts
 * on one node (docker compose up starts services in parallel) used to run
 * out of retries. Waiting a random, growing while lets the winner land and
 * spreads the contenders.
 */
function pauseAfterConflict(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(5 * 2 ** attempt, 250)));
}

export class NodeStore {
  constructor(private readonly backend: Backend) {}

  async register(info: { name: string; hostname: string; engineLabels: Record<string, string> }): Promise<NodeRecord> {
    const now = new Date().toISOString();
    const record: NodeRecord = { id: newObjectId(), ...info, role: 'node', containers: [], createdAt: now, updatedAt: now };
    const key = nodeKey(record.id);
    await this.backend.commit({ conditions: [{ key, modRevision: 0 }], ops: [{ type: 'put', key, value: JSON.stringify(record) }] });
    return record;
  }

  async find(idOrName: string): Promise<NodeRecord | undefined> {
    const byId = await this.backend.get(nodeKey(idOrName));
    if (byId) return JSON.parse(byId.value) as NodeRecord;
    const matches = (await this.list()).filter((n) => n.name === idOrName);
    if (matches.length > 1) throw new HushError('conflict', `${matches.length} nodes are named "${idOrName}"; use the node id`);
    return matches[0];
  }

  async get(idOrName: string): Promise<NodeRecord> {
    const node = await this.find(idOrName);
    if (!node) throw new HushError('not_found', `no node "${idOrName}"; \`hush node ls\` lists them`);
    return node;
  }

  async list(): Promise<NodeRecord[]> {
    return (await this.backend.list(NODE_PREFIX)).map((e) => JSON.parse(e.value) as NodeRecord);
  }

  async withName(name: string): Promise<NodeRecord[]> {
    return (await this.list()).filter((n) => n.name === name);
  }

  /** The admin labels of a node name (`node.labels`); empty when it has none. */
  async adminLabels(name: string): Promise<Record<string, string>> {
    const entry = await this.backend.get(nodeLabelsKey(name));
    return entry ? (JSON.parse(entry.value) as NodeNameLabels).labels : {};
  }

  /** Every node name's admin labels, for listing many nodes at once. */
  async allAdminLabels(): Promise<Map<string, Record<string, string>>> {
    const entries = await this.backend.list(NODE_LABELS_PREFIX);
    return new Map(entries.map((e) => JSON.parse(e.value) as NodeNameLabels).map((r) => [r.name, r.labels]));
  }

  /**
   * Sets and removes admin labels of a node name, retrying on concurrent
   * updates. A name left with no labels loses its record, so it counts as
   * unlabelled again for joins.
   */
  async changeAdminLabels(name: string, change: { add?: Record<string, string>; remove?: readonly string[] }): Promise<Record<string, string>> {
    const key = nodeLabelsKey(name);
    for (let attempt = 0; ; attempt++) {
      const entry = await this.backend.get(key);
      const labels = { ...(entry ? (JSON.parse(entry.value) as NodeNameLabels).labels : {}), ...change.add };
      for (const k of change.remove ?? []) delete labels[k];
      const record: NodeNameLabels = { name, labels, updatedAt: new Date().toISOString() };
      const op = Object.keys(labels).length > 0 ? ({ type: 'put', key, value: JSON.stringify(record) } as const) : ({ type: 'delete', key } as const);
      try {
        await this.backend.commit({ conditions: [{ key, modRevision: entry?.modRevision ?? 0 }], ops: [op] });
        return labels;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= RETRIES) throw err;
        await pauseAfterConflict(attempt);
      }
    }
  }

  /**
   * Records written before admin and engine labels were kept apart held the
   * labels the agent sent at join as `labels`. Those were self-reported, so
   * they become engine labels, never admin ones. Idempotent; one commit.
   */
  async migrateJoinLabels(): Promise<number> {
    const old = (await this.backend.list(NODE_PREFIX)).filter((e) => 'labels' in (JSON.parse(e.value) as object));
    if (old.length === 0) return 0;
    await this.backend.commit({
      conditions: old.map((e) => ({ key: e.key, modRevision: e.modRevision })),
      ops: old.map((e) => {
        const { labels, ...rest } = JSON.parse(e.value) as Omit<NodeRecord, 'engineLabels'> & { labels: Record<string, string>; engineLabels?: Record<string, string> };
        return { type: 'put', key: e.key, value: JSON.stringify({ ...rest, engineLabels: { ...labels, ...rest.engineLabels } }) };
      }),
    });
    return old.length;
  }

  async isRevoked(id: string): Promise<boolean> {
    return (await this.backend.get(revokedKey(id))) !== undefined;
  }

  /** Applies `change` to the node's record, retrying on concurrent updates. */
  async update(id: string, change: (node: NodeRecord) => NodeRecord): Promise<NodeRecord> {
    for (let attempt = 0; ; attempt++) {
      const entry = await this.backend.get(nodeKey(id));
      if (!entry) throw new HushError('not_found', `no node "${id}"`);
      const next = { ...change(JSON.parse(entry.value) as NodeRecord), updatedAt: new Date().toISOString() };
      try {
        await this.backend.commit({ conditions: [{ key: entry.key, modRevision: entry.modRevision }], ops: [{ type: 'put', key: entry.key, value: JSON.stringify(next) }] });
        return next;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= RETRIES) throw err;
        await pauseAfterConflict(attempt);
      }
    }
  }

  /**
   * Removes the node and revokes its certificate identity for good. What
   * replicas shared about its session (which replica serves it, what it
   * acknowledged holding) goes in the same commit: a removed node leaves no record behind.
   */
  async revoke(idOrName: string): Promise<NodeRecord> {
    const node = await this.get(idOrName);
    await this.backend.commit({
      ops: [
        { type: 'delete', key: nodeKey(node.id) },
        { type: 'delete', key: nodeAcksKey(node.id) },
        { type: 'delete', key: nodeSessionKey(node.id) },
        { type: 'put', key: revokedKey(node.id), value: JSON.stringify({ id: node.id, name: node.name, revokedAt: new Date().toISOString() }) },
      ],
    });
    return node;
  }
}
