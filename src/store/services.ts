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
  /**
   * Set by a deploy (`com.docker.stack.namespace`: the project). Records
   * written before labels existed have none; readers treat that as {}.
   */
  labels?: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

export const SERVICE_PREFIX = 'services/';
const COMMIT_RETRIES = 5;

/** What a service update may change; the result is validated by the caller (acl) before it is stored. */
export type ServiceSpecChange = (current: { name: string; grants: GrantRecord[]; constraints: string[] }) => { name: string; grants: GrantRecord[]; constraints: string[] };

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

  /**
   * Changes a service in one transaction (like `docker service update`):
   * `change` maps the current spec to the new one; the commit is conditioned
   * on the service and every granted secret being as read, and retried when
   * someone else changed them first. Labels and createdAt are kept.
   */
  async update(name: string, change: ServiceSpecChange): Promise<ServiceRecord> {
    for (let attempt = 0; ; attempt++) {
      const key = SERVICE_PREFIX + name;
      const entry = await this.backend.get(key);
      if (!entry) throw new HushError('not_found', `no service named "${name}"; \`hush service ls\` lists them`);
      const current = JSON.parse(entry.value) as ServiceRecord;
      const spec = change({ name: current.name, grants: current.grants, constraints: current.constraints });
      const secrets = await Promise.all(spec.grants.map(async (g) => ({ source: g.source, entry: await this.backend.get(`secrets/${g.source}`) })));
      const missing = [...new Set(secrets.filter((s) => !s.entry).map((s) => s.source))];
      if (missing.length > 0) throw new HushError('not_found', `service "${name}" would be granted secrets that do not exist: ${missing.join(', ')}; create them first`);
      const record: ServiceRecord = { ...current, grants: spec.grants, constraints: spec.constraints, updatedAt: new Date().toISOString() };
      try {
        await this.backend.commit({
          conditions: [{ key, modRevision: entry.modRevision }, ...secrets.map((s) => ({ key: s.entry!.key, modRevision: s.entry!.modRevision }))],
          ops: [{ type: 'put', key, value: JSON.stringify(record) }],
        });
        return record;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        if (attempt >= COMMIT_RETRIES) throw new HushError('conflict', `service "${name}" or one of its secrets kept changing meanwhile; try again`);
      }
    }
  }

  /** Every service record with its revision, for a transaction that conditions on them (stacks.ts). */
  async readAll(): Promise<{ record: ServiceRecord; modRevision: number }[]> {
    return (await this.backend.list(SERVICE_PREFIX)).map((e) => ({ record: JSON.parse(e.value) as ServiceRecord, modRevision: e.modRevision }));
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
