/**
 * Node records: identity (the id in the node's certificate), name, hostname,
 * labels, and the containers it reported running. Removing a node revokes it:
 * its id goes on the revocation list and stays there.
 */
import { HushError } from '../errors/index.js';
import { ConflictError, type Backend } from './backend.js';
import { newObjectId } from './ids.js';

export interface NodeContainer {
  id: string;
  service: string;
}

export interface NodeRecord {
  id: string;
  name: string;
  hostname: string;
  labels: Record<string, string>;
  role: 'node';
  containers: NodeContainer[];
  createdAt: string;
  updatedAt: string;
}

export const NODE_PREFIX = 'nodes/';
export const REVOKED_PREFIX = 'revoked/';
const RETRIES = 5;

export class NodeStore {
  constructor(private readonly backend: Backend) {}

  async register(info: { name: string; hostname: string; labels: Record<string, string> }): Promise<NodeRecord> {
    const now = new Date().toISOString();
    const record: NodeRecord = { id: newObjectId(), ...info, role: 'node', containers: [], createdAt: now, updatedAt: now };
    const key = NODE_PREFIX + record.id;
    await this.backend.commit({ conditions: [{ key, modRevision: 0 }], ops: [{ type: 'put', key, value: JSON.stringify(record) }] });
    return record;
  }

  async find(idOrName: string): Promise<NodeRecord | undefined> {
    const byId = await this.backend.get(NODE_PREFIX + idOrName);
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

  async isRevoked(id: string): Promise<boolean> {
    return (await this.backend.get(REVOKED_PREFIX + id)) !== undefined;
  }

  /** Applies `change` to the node's record, retrying on concurrent updates. */
  async update(id: string, change: (node: NodeRecord) => NodeRecord): Promise<NodeRecord> {
    for (let attempt = 0; ; attempt++) {
      const entry = await this.backend.get(NODE_PREFIX + id);
      if (!entry) throw new HushError('not_found', `no node "${id}"`);
      const next = { ...change(JSON.parse(entry.value) as NodeRecord), updatedAt: new Date().toISOString() };
      try {
        await this.backend.commit({ conditions: [{ key: entry.key, modRevision: entry.modRevision }], ops: [{ type: 'put', key: entry.key, value: JSON.stringify(next) }] });
        return next;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= RETRIES) throw err;
      }
    }
  }

  /** Removes the node and revokes its certificate identity for good. */
  async revoke(idOrName: string): Promise<NodeRecord> {
    const node = await this.get(idOrName);
    await this.backend.commit({
      ops: [
        { type: 'delete', key: NODE_PREFIX + node.id },
        { type: 'put', key: REVOKED_PREFIX + node.id, value: JSON.stringify({ id: node.id, name: node.name, revokedAt: new Date().toISOString() }) },
      ],
    });
    return node;
  }
}
