/**
 * Stacks: the secrets and services of one compose project, found by the
 * label `com.docker.stack.namespace=<project>` as `docker stack deploy` puts
 * it. A deploy is planned against the store's state and applied as ONE
 * transaction (all or nothing), conditioned on everything it read, so a
 * concurrent change makes it start over rather than half-apply. Sealing and
 * key layout stay in secrets.ts (SecretOps); this module only decides.
 *
 * What a project may touch: objects that carry its label, and new ones. A
 * planned name that exists without the label (made by hand, or by another
 * project) is refused, never adopted: otherwise a deploy could rotate or
 * prune any secret by naming it.
 */
import type { Grant } from '../acl/index.js';
import { HushError } from '../errors/index.js';
import { assertValidLabels, assertValidName, assertValidProjectName } from '../rules/index.js';
import { ConflictError, type Backend, type KvCondition, type KvOp } from './backend.js';
import type { ReadSecret, SecretOps, SecretRecord, SecretStore } from './secrets.js';
import { secretUseOps, type ServiceRecord, type ServiceStore } from './services.js';
import { serviceKey } from './keys.js';

/** The label docker stack deploy puts on what it creates. */
export const STACK_LABEL = 'com.docker.stack.namespace';
const COMMIT_RETRIES = 5;

export interface DeploySecret {
  /** The compose key, for messages only. */
  key: string;
  /** The store name. */
  name: string;
  /** Must exist already; carries no data and no labels. */
  external: boolean;
  labels: Record<string, string>;
  data?: Uint8Array;
}

export interface DeployService {
  name: string;
  /** Validated by acl (targets, modes, ids) before they get here. */
  grants: Grant[];
  /** Canonical constraint texts, validated by acl. */
  constraints: string[];
}

export interface DeployRequest {
  project: string;
  secrets: DeploySecret[];
  services: DeployService[];
  /** Remove the project's secrets and services that the plan no longer has. */
  prune: boolean;
  /** Decide and report, change nothing. */
  dryRun: boolean;
}

/**
 * create: new; version: a new value, made the current version (pushed to
 * running containers); update: labels (secret) or grants/constraints
 * (service) changed; unchanged; external: an external secret, used as it is;
 * remove: pruned or removed with the stack.
 */
export type ActionKind = 'create' | 'version' | 'update' | 'unchanged' | 'external' | 'remove';

export interface DeployAction {
  kind: 'secret' | 'service';
  name: string;
  action: ActionKind;
  /** For secrets: the version current after the deploy (or that would be, in a dry run). */
  version?: number;
}

export interface DeployResult {
  project: string;
  dryRun: boolean;
  actions: DeployAction[];
  /** The store revision after the deploy; unchanged when nothing had to change. */
  revision: number;
}

export interface StackSummary {
  name: string;
  secrets: number;
  services: number;
}

interface Txn {
  conditions: KvCondition[];
  ops: KvOp[];
}

const labelOf = (labels: Record<string, string> | undefined, key: string): string | undefined => (labels !== undefined && Object.hasOwn(labels, key) ? labels[key] : undefined);
const inStack = (labels: Record<string, string> | undefined, project: string) => labelOf(labels, STACK_LABEL) === project;

export class StackStore {
  constructor(
    private readonly backend: Backend,
    private readonly secrets: SecretStore,
    private readonly services: ServiceStore,
  ) {}

  /** `actor` is recorded on the versions the deploy makes (who made them, for `hush secret versions`). */
  async deploy(request: DeployRequest, actor?: string): Promise<DeployResult> {
    const plan = checkRequest(request);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.secrets.sealing((ops) => this.deployOnce(plan, ops, actor));
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        if (attempt >= COMMIT_RETRIES) throw new HushError('conflict', `project "${plan.project}" kept changing while it was being deployed; try again`);
      }
    }
  }

  private async deployOnce(plan: DeployRequest, sealer: SecretOps, actor: string | undefined): Promise<DeployResult> {
    const { project } = plan;
    const secrets = byName(await sealer.readAll());
    const services = byName(await this.services.readAll());
    const actions: DeployAction[] = [];
    const txn: Txn = { conditions: [], ops: [] };
    const add = (part: Txn) => {
      txn.conditions.push(...part.conditions);
      txn.ops.push(...part.ops);
    };
    const missing: string[] = [];
    const foreign: string[] = [];
    let sealed = false;

    for (const planned of plan.secrets) {
      const found = secrets.get(planned.name);
      if (planned.external) {
        if (!found) missing.push(planned.name);
        else {
          // The grants below point at it: it must still be there when the transaction commits.
          txn.conditions.push(...sealer.replaceTxn(found.record, found.modRevision).conditions);
          actions.push({ kind: 'secret', name: planned.name, action: 'external', version: currentVersion(found.record) });
        }
        continue;
      }
      const data = planned.data!;
      if (!found) {
        add(sealer.createTxn(sealer.newRecord(planned.name, data, planned.labels, { actor, origin: 'deploy' })));
        sealed = true;
        actions.push({ kind: 'secret', name: planned.name, action: 'create', version: 1 });
        continue;
      }
      if (!inStack(found.record.labels, project)) {
        foreign.push(`secret "${planned.name}"${ownerNote(found.record.labels)}`);
        continue;
      }
      const relabelled: SecretRecord = { ...found.record, labels: planned.labels };
      if (!sealer.holdsValue(found.record, data)) {
        const next = sealer.nextVersion(relabelled, data, { actor, origin: 'deploy' });
        add(sealer.replaceTxn(next, found.modRevision));
        sealed = true;
        actions.push({ kind: 'secret', name: planned.name, action: 'version', version: currentVersion(next) });
      } else if (!sameLabels(found.record.labels, planned.labels)) {
        add(sealer.replaceTxn({ ...relabelled, updatedAt: new Date().toISOString() }, found.modRevision));
        actions.push({ kind: 'secret', name: planned.name, action: 'update', version: currentVersion(found.record) });
      } else {
        txn.conditions.push(...sealer.replaceTxn(found.record, found.modRevision).conditions);
        actions.push({ kind: 'secret', name: planned.name, action: 'unchanged', version: currentVersion(found.record) });
      }
    }

    const now = new Date().toISOString();
    for (const planned of plan.services) {
      const found = services.get(planned.name);
      const key = serviceKey(planned.name);
      const labels = { [STACK_LABEL]: project };
      if (found && !inStack(found.record.labels, project)) {
        foreign.push(`service "${planned.name}"${ownerNote(found.record.labels)}`);
        continue;
      }
      if (found && sameService(found.record, planned, labels)) {
        txn.conditions.push({ key, modRevision: found.modRevision });
        actions.push({ kind: 'service', name: planned.name, action: 'unchanged' });
        continue;
      }
      const record: ServiceRecord = { name: planned.name, grants: planned.grants, constraints: planned.constraints, labels, createdAt: found?.record.createdAt ?? now, updatedAt: now };
      add({ conditions: [{ key, modRevision: found?.modRevision ?? 0 }], ops: [{ type: 'put', key, value: JSON.stringify(record) }, ...secretUseOps(planned.name, found?.record.grants ?? [], planned.grants)] });
      actions.push({ kind: 'service', name: planned.name, action: found ? 'update' : 'create' });
    }

    if (missing.length > 0) {
      throw new HushError('not_found', `external secret${missing.length > 1 ? 's' : ''} ${missing.map((n) => `"${n}"`).join(', ')} ${missing.length > 1 ? 'do' : 'does'} not exist; create ${missing.length > 1 ? 'them' : 'it'} first (\`hush secret create NAME FILE\`), or drop external: to let the deploy create ${missing.length > 1 ? 'them' : 'it'}`);
    }
    if (foreign.length > 0) {
      throw new HushError('conflict', `project "${project}" would take over ${foreign.join(', ')}, which ${foreign.length > 1 ? 'exist' : 'exists'} without the label ${STACK_LABEL}=${project}; give ${foreign.length > 1 ? 'them' : 'it'} another name in the compose file, use external: true for a secret to use it as it is, or remove ${foreign.length > 1 ? 'them' : 'it'} first`);
    }

    if (plan.prune) {
      const keepSecrets = new Set(plan.secrets.map((s) => s.name));
      const keepServices = new Set(plan.services.map((s) => s.name));
      const goneServices = [...services.values()].filter((s) => inStack(s.record.labels, project) && !keepServices.has(s.record.name));
      const goneSecrets = [...secrets.values()].filter((s) => inStack(s.record.labels, project) && !keepSecrets.has(s.record.name));
      // Services that stay (the plan's, and those outside the project) must not lose a granted secret.
      const staying = [...services.values()].filter((s) => !goneServices.includes(s)).map((s) => (keepServices.has(s.record.name) ? { ...s.record, grants: plan.services.find((p) => p.name === s.record.name)!.grants } : s.record));
      assertUnused(goneSecrets, staying, `it is no longer in project "${project}"`);
      // Services first: their use ops touch use keys that the secret removals below then delete.
      for (const s of goneServices) {
        add(serviceRemoveTxn(s));
        actions.push({ kind: 'service', name: s.record.name, action: 'remove' });
      }
      for (const s of goneSecrets) {
        add(sealer.removeTxn(s));
        actions.push({ kind: 'secret', name: s.record.name, action: 'remove' });
      }
    }

    if (plan.dryRun || txn.ops.length === 0) return { project, dryRun: plan.dryRun, actions, revision: this.backend.revision() };
    if (sealed) txn.conditions.push(sealer.keyCondition());
    const revision = await this.backend.commit(txn);
    return { project, dryRun: false, actions, revision };
  }

  /** Every project that labels at least one object, with how many secrets and services it has. */
  async list(): Promise<StackSummary[]> {
    const stacks = new Map<string, StackSummary>();
    const count = (labels: Record<string, string> | undefined, field: 'secrets' | 'services') => {
      const name = labelOf(labels, STACK_LABEL);
      if (name === undefined) return;
      const stack = stacks.get(name) ?? { name, secrets: 0, services: 0 };
      stack[field]++;
      stacks.set(name, stack);
    };
    for (const s of await this.secrets.list()) count(s.labels, 'secrets');
    for (const s of await this.services.list()) count(s.labels, 'services');
    return [...stacks.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Removes everything labelled with the project, in one transaction: 404
   * when nothing carries the label, 409 (in_use) when a service outside the
   * project is granted one of its secrets.
   */
  async remove(project: string): Promise<DeployAction[]> {
    assertValidProjectName(project);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.secrets.sealing((sealer) => this.removeOnce(project, sealer));
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        if (attempt >= COMMIT_RETRIES) throw new HushError('conflict', `project "${project}" kept changing while it was being removed; try again`);
      }
    }
  }

  private async removeOnce(project: string, sealer: SecretOps): Promise<DeployAction[]> {
    const secrets = (await sealer.readAll()).filter((s) => inStack(s.record.labels, project));
    const all = await this.services.readAll();
    const services = all.filter((s) => inStack(s.record.labels, project));
    if (secrets.length + services.length === 0) throw new HushError('not_found', `no stack "${project}": nothing carries the label ${STACK_LABEL}=${project}; \`hush stack ls\` lists the stacks`);
    assertUnused(secrets, all.filter((s) => !services.includes(s)).map((s) => s.record), `stack "${project}" is being removed`);
    const txn: Txn = { conditions: [], ops: [] };
    const actions: DeployAction[] = [];
    // Services first: their use ops touch use keys that the secret removals below then delete.
    for (const s of services) {
      const part = serviceRemoveTxn(s);
      txn.conditions.push(...part.conditions);
      txn.ops.push(...part.ops);
      actions.push({ kind: 'service', name: s.record.name, action: 'remove' });
    }
    for (const s of secrets) {
      const part = sealer.removeTxn(s);
      txn.conditions.push(...part.conditions);
      txn.ops.push(...part.ops);
      actions.push({ kind: 'secret', name: s.record.name, action: 'remove' });
    }
    await this.backend.commit(txn);
    return actions;
  }
}

/**
 * The checks that need no store state: names, labels, values, that every
 * grant's source is one of the plan's secrets, that a project names its
 * services `<project>_...` and labels what it creates. Returns the plan with
 * the project label set on every secret it creates.
 */
function checkRequest(request: DeployRequest): DeployRequest {
  const { project } = request;
  assertValidProjectName(project);
  const names = new Set<string>();
  const secrets = request.secrets.map((s) => {
    const where = `secret "${s.key}"`;
    try {
      assertValidName(s.name, 'secret');
    } catch (err) {
      throw located(err, where);
    }
    if (names.has(s.name)) throw new HushError('bad_request', `${where}: two secrets of the plan are stored as "${s.name}"; give one of them another name`);
    names.add(s.name);
    if (s.external) {
      if (s.data !== undefined) throw new HushError('bad_request', `${where} is external (it must exist already), so it carries no data`);
      if (Object.keys(s.labels).length > 0) throw new HushError('bad_request', `${where} is external: its labels are not changed by a deploy; remove labels from the plan`);
      return s;
    }
    if (s.data === undefined) throw new HushError('bad_request', `${where} needs data (base64), or external: true`);
    const stack = labelOf(s.labels, STACK_LABEL);
    if (stack !== undefined && stack !== project) throw new HushError('bad_request', `${where}: label ${STACK_LABEL}=${stack} does not match project "${project}"`);
    const labels = { ...s.labels, [STACK_LABEL]: project };
    try {
      assertValidLabels(labels);
    } catch (err) {
      throw located(err, where);
    }
    return { ...s, labels };
  });

  const serviceNames = new Set<string>();
  for (const svc of request.services) {
    assertValidName(svc.name, 'service');
    if (!svc.name.startsWith(`${project}_`)) throw new HushError('bad_request', `service "${svc.name}": the services of project "${project}" are named "${project}_<service>"`);
    if (serviceNames.has(svc.name)) throw new HushError('bad_request', `service "${svc.name}" is in the plan twice`);
    serviceNames.add(svc.name);
    for (const g of svc.grants) {
      if (!names.has(g.source)) throw new HushError('bad_request', `service "${svc.name}": grant of "${g.source}", which is not one of the plan's secrets; add it to secrets (external: true if it exists already)`);
    }
  }
  return { ...request, secrets };
}

function located(err: unknown, where: string): unknown {
  return err instanceof HushError ? new HushError(err.code, `${where}: ${err.message}`) : err;
}

/** Refuses to remove secrets that a remaining service is granted (409 in_use, naming them). */
function assertUnused(gone: ReadSecret[], remaining: Pick<ServiceRecord, 'name' | 'grants'>[], why: string): void {
  for (const s of gone) {
    const users = remaining.filter((svc) => svc.grants.some((g) => g.source === s.record.name)).map((svc) => svc.name).sort();
    if (users.length > 0) {
      throw new HushError('in_use', `secret "${s.record.name}" would be removed (${why}) but service${users.length > 1 ? 's' : ''} ${users.join(', ')} ${users.length > 1 ? 'use' : 'uses'} it; update ${users.length > 1 ? 'them' : 'it'} first (\`hush service update ${users[0]} --secret-rm ${s.record.name}\`)`);
    }
  }
}

function byName<T extends { record: { name: string } }>(items: T[]): Map<string, T> {
  return new Map(items.map((i) => [i.record.name, i]));
}

function currentVersion(record: SecretRecord): number {
  return record.versions.at(-1)!.version;
}

function ownerNote(labels: Record<string, string> | undefined): string {
  const owner = labelOf(labels, STACK_LABEL);
  return owner === undefined ? '' : ` (of project "${owner}")`;
}

function sameLabels(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const left = Object.entries(a ?? {}).sort(([x], [y]) => x.localeCompare(y));
  const right = Object.entries(b).sort(([x], [y]) => x.localeCompare(y));
  return JSON.stringify(left) === JSON.stringify(right);
}

function sameService(record: ServiceRecord, planned: DeployService, labels: Record<string, string>): boolean {
  const grant = (g: Grant) => [g.source, g.target, g.uid, g.gid, g.mode];
  return (
    JSON.stringify(record.grants.map(grant)) === JSON.stringify(planned.grants.map(grant)) &&
    JSON.stringify(record.constraints) === JSON.stringify(planned.constraints) &&
    sameLabels(record.labels, labels)
  );
}

/** Removes a service as read, with the ops that drop its uses of secrets. */
function serviceRemoveTxn(s: { record: ServiceRecord; modRevision: number }): Txn {
  const key = serviceKey(s.record.name);
  return { conditions: [{ key, modRevision: s.modRevision }], ops: [{ type: 'delete', key }, ...secretUseOps(s.record.name, s.record.grants, [])] };
}
