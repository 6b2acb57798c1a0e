/**
 * Service records: which secrets a service is granted (and how they appear
 * in its containers) and where it may run. Specs arrive validated by acl;
 * this layer keeps them durable and checks that granted secrets exist.
 *
 * Each service also records, in the same commit as its record, that it uses
 * each secret it is granted (`secret-users/<secret>/<service>`), and touches
 * `secret-use/<secret>` whenever it starts or stops using one. A secret's
 * delete is conditioned on that key (secrets.ts), so "in use" is decided
 * inside the delete's transaction, as swarmkit does.
 */
import { assertTemplateInputsGranted, type Grant } from '../acl/index.js';
import { HushError } from '../errors/index.js';
import { ConflictError, type Backend, type KvOp } from './backend.js';
import { SECRET_USERS_PREFIX, SERVICE_PREFIX, secretKey, secretUseKey, secretUserKey, serviceKey } from './keys.js';

export interface ServiceRecord {
  name: string;
  grants: Grant[];
  constraints: string[];
  /**
   * Set by a deploy (`com.docker.stack.namespace`: the project). Records
   * written before labels existed have none; readers treat that as {}.
   */
  labels?: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

const COMMIT_RETRIES = 5;

/** What a service update may change; the result is validated by the caller (acl) before it is stored. */
export type ServiceSpecChange = (current: { name: string; grants: Grant[]; constraints: string[] }) => { name: string; grants: Grant[]; constraints: string[] };

/** The secrets the latest version of a template secret references (open.ts reads it through the secret store). */
export type TemplateReferences = (secret: string) => Promise<string[]>;

export class ServiceStore {
  constructor(
    private readonly backend: Backend,
    private readonly templateReferences?: TemplateReferences,
  ) {}

  /** Every template grant references only secrets the same spec grants (acl's rule), read from the template's latest version. */
  private async assertTemplates(spec: { name: string; grants: Grant[] }): Promise<void> {
    for (const grant of spec.grants.filter((g) => g.template)) {
      if (!this.templateReferences) throw new HushError('internal', 'this store cannot check templates');
      assertTemplateInputsGranted(spec.name, grant, await this.templateReferences(grant.source), spec.grants);
    }
  }

  /** Creates or replaces a service (like `docker service create`/`update`). */
  async put(spec: { name: string; grants: Grant[]; constraints: string[] }, options: { replace?: boolean } = {}): Promise<ServiceRecord> {
    const key = serviceKey(spec.name);
    const existing = await this.backend.get(key);
    if (existing && !options.replace) throw new HushError('conflict', `service "${spec.name}" already exists; remove it first, or deploy to update it`);
    const previous = existing && (JSON.parse(existing.value) as ServiceRecord);
    // One read per granted secret: it must exist, and its revision becomes a commit condition,
    // so a grant never points at a secret removed meanwhile.
    const secrets = await Promise.all(spec.grants.map(async (g) => ({ source: g.source, entry: await this.backend.get(secretKey(g.source)) })));
    const missing = secrets.filter((s) => !s.entry).map((s) => s.source);
    if (missing.length > 0) throw new HushError('not_found', `service "${spec.name}" is granted secrets that do not exist: ${missing.join(', ')}; create them first`);
    // Read before the commit, which is conditioned on each granted secret (the template too): a rotation of the template meanwhile retries.
    await this.assertTemplates(spec);
    const now = new Date().toISOString();
    const record: ServiceRecord = {
      name: spec.name,
      grants: spec.grants,
      constraints: spec.constraints,
      createdAt: previous ? previous.createdAt : now,
      updatedAt: now,
    };
    try {
      const secretConditions = secrets.map((s) => ({ key: s.entry!.key, modRevision: s.entry!.modRevision }));
      await this.backend.commit({
        conditions: [{ key, modRevision: existing?.modRevision ?? 0 }, ...secretConditions],
        ops: [{ type: 'put', key, value: JSON.stringify(record) }, ...secretUseOps(spec.name, previous?.grants ?? [], spec.grants)],
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
      const key = serviceKey(name);
      const entry = await this.backend.get(key);
      if (!entry) throw new HushError('not_found', `no service named "${name}"; \`hush service ls\` lists them`);
      const current = JSON.parse(entry.value) as ServiceRecord;
      const spec = change({ name: current.name, grants: current.grants, constraints: current.constraints });
      const secrets = await Promise.all(spec.grants.map(async (g) => ({ source: g.source, entry: await this.backend.get(secretKey(g.source)) })));
      const missing = [...new Set(secrets.filter((s) => !s.entry).map((s) => s.source))];
      if (missing.length > 0) throw new HushError('not_found', `service "${name}" would be granted secrets that do not exist: ${missing.join(', ')}; create them first`);
      await this.assertTemplates({ name, grants: spec.grants });
      const record: ServiceRecord = { ...current, grants: spec.grants, constraints: spec.constraints, updatedAt: new Date().toISOString() };
      try {
        await this.backend.commit({
          conditions: [{ key, modRevision: entry.modRevision }, ...secrets.map((s) => ({ key: s.entry!.key, modRevision: s.entry!.modRevision }))],
          ops: [{ type: 'put', key, value: JSON.stringify(record) }, ...secretUseOps(name, current.grants, spec.grants)],
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
    const entry = await this.backend.get(serviceKey(name));
    if (!entry) throw new HushError('not_found', `no service named "${name}"; \`hush service ls\` lists them`);
    return JSON.parse(entry.value) as ServiceRecord;
  }

  async list(): Promise<ServiceRecord[]> {
    return (await this.backend.list(SERVICE_PREFIX)).map((e) => JSON.parse(e.value) as ServiceRecord);
  }

  async remove(name: string): Promise<void> {
    const entry = await this.backend.get(serviceKey(name));
    if (!entry) throw new HushError('not_found', `no service named "${name}"`);
    const uses = secretUseOps(name, (JSON.parse(entry.value) as ServiceRecord).grants, []);
    await this.backend.commit({ conditions: [{ key: entry.key, modRevision: entry.modRevision }], ops: [{ type: 'delete', key: entry.key }, ...uses] });
  }

  /**
   * Records that each service uses the secrets it is granted, for data
   * written before uses were recorded: adds the missing use keys in one
   * commit, conditioned on the services as read (retried if one changed).
   * Idempotent; returns how many keys it added.
   */
  async migrateSecretUses(): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const services = await this.backend.list(SERVICE_PREFIX);
      const have = new Set((await this.backend.list(SECRET_USERS_PREFIX)).map((e) => e.key));
      const missing: KvOp[] = [];
      for (const entry of services) {
        const record = JSON.parse(entry.value) as ServiceRecord;
        for (const op of secretUseOps(record.name, [], record.grants)) if (op.type === 'put' && !have.has(op.key) && op.key.startsWith(SECRET_USERS_PREFIX)) missing.push(op);
      }
      if (missing.length === 0) return 0;
      try {
        await this.backend.commit({ conditions: services.map((e) => ({ key: e.key, modRevision: e.modRevision })), ops: missing });
        return missing.length;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= COMMIT_RETRIES) throw err;
      }
    }
  }
}

/**
 * What a service commit adds to record its use of secrets, going from
 * `before` to `after` grants: a use key per secret it is granted, a delete
 * per secret it no longer is, and the use key of each of those secrets
 * touched (a put with no condition, so services never conflict with each
 * other over it): a delete of that secret that read the uses before this
 * commit then fails its condition. Every commit that writes or removes a
 * service record (a deploy writing several at once too) must include these.
 */
export function secretUseOps(service: string, before: readonly Grant[], after: readonly Grant[]): KvOp[] {
  const was = sources(before);
  const is = sources(after);
  const ops: KvOp[] = [];
  for (const secret of is) ops.push({ type: 'put', key: secretUserKey(secret, service), value: '' }, { type: 'put', key: secretUseKey(secret), value: '' });
  for (const secret of was) {
    if (!is.has(secret)) ops.push({ type: 'delete', key: secretUserKey(secret, service) }, { type: 'put', key: secretUseKey(secret), value: '' });
  }
  return ops;
}

function sources(grants: readonly Grant[]): Set<string> {
  return new Set(grants.map((g) => g.source));
}
