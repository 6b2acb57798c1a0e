/**
 * Service records: which secrets a service is granted (and how they appear
 * in its containers) and where it may run. Specs arrive validated by acl;
 * this layer keeps them durable and checks that granted secrets exist.
 */
import { HushError } from '../errors/index.js';
import { ConflictError, type Backend } from './backend.js';

export interface GrantRecord {
  source: string;
  target: string;
  uid: number;
  gid: number;
  mode: number;
}

export interface ServiceRecord {
  name: string;
  grants: GrantRecord[];
  constraints: string[];
  createdAt: string;
  updatedAt: string;
}

export const SERVICE_PREFIX = 'services/';

export class ServiceStore {
  constructor(private readonly backend: Backend) {}

  /** Creates or replaces a service (like `docker service create`/`update`). */
  async put(spec: { name: string; grants: GrantRecord[]; constraints: string[] }, options: { replace?: boolean } = {}): Promise<ServiceRecord> {
    const key = SERVICE_PREFIX + spec.name;
    const existing = await this.backend.get(key);
    if (existing && !options.replace) throw new HushError('conflict', `service "${spec.name}" already exists; remove it first, or deploy to update it`);
    // One read per granted secret: it must exist, and its revision becomes a commit condition,
    // so a grant never points at a secret removed meanwhile.
    const secrets = await Promise.all(spec.grants.map(async (g) => ({ source: g.source, entry: await this.backend.get(`secrets/${g.source}`) })));
    const missing = secrets.filter((s) => !s.entry).map((s) => s.source);
    if (missing.length > 0) throw new HushError('not_found', `service "${spec.name}" is granted secrets that do not exist: ${missing.join(', ')}; create them first`);
    const now = new Date().toISOString();
    const record: ServiceRecord = {
      name: spec.name,
      grants: spec.grants,
      constraints: spec.constraints,
      createdAt: existing ? (JSON.parse(existing.value) as ServiceRecord).createdAt : now,
      updatedAt: now,
    };
    try {
      const secretConditions = secrets.map((s) => ({ key: s.entry!.key, modRevision: s.entry!.modRevision }));
      await this.backend.commit({
        conditions: [{ key, modRevision: existing?.modRevision ?? 0 }, ...secretConditions],
        ops: [{ type: 'put', key, value: JSON.stringify(record) }],
      });
    } catch (err) {
      if (err instanceof ConflictError) throw new HushError('conflict', `service "${spec.name}" or one of its secrets changed meanwhile; try again`);
      throw err;
    }
    return record;
  }

  async get(name: string): Promise<ServiceRecord> {
    const entry = await this.backend.get(SERVICE_PREFIX + name);
    if (!entry) throw new HushError('not_found', `no service named "${name}"; \`hush service ls\` lists them`);
    return JSON.parse(entry.value) as ServiceRecord;
  }

  async list(): Promise<ServiceRecord[]> {
    return (await this.backend.list(SERVICE_PREFIX)).map((e) => JSON.parse(e.value) as ServiceRecord);
  }

  async remove(name: string): Promise<void> {
    const entry = await this.backend.get(SERVICE_PREFIX + name);
    if (!entry) throw new HushError('not_found', `no service named "${name}"`);
    await this.backend.commit({ conditions: [{ key: entry.key, modRevision: entry.modRevision }], ops: [{ type: 'delete', key: entry.key }] });
  }
}
