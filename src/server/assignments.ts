/**
 * Which nodes a store change affects, like swarmkit's assignments: an index
 * of which services grant each secret, and which nodes run a container of
 * each service, so that a rotation of one secret touches the nodes running
 * services granted it and no other. Mirrors the service and node records
 * (loaded once, then kept current from the change feed); pure, no I/O.
 */
import type { NodeRecord, ServiceRecord, StoreChange } from '../store/index.js';

/** Adds `value` to the set under `key`. */
function addTo(index: Map<string, Set<string>>, key: string, value: string): void {
  let set = index.get(key);
  if (!set) index.set(key, (set = new Set()));
  set.add(value);
}

/** Removes `value` from the set under `key`, and the set once empty. */
function removeFrom(index: Map<string, Set<string>>, key: string, value: string): void {
  const set = index.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) index.delete(key);
}

export class Assignments {
  /** secret → services granted it */
  private readonly servicesBySecret = new Map<string, Set<string>>();
  /** service → secrets it is granted (to undo its entries when it changes) */
  private readonly secretsByService = new Map<string, Set<string>>();
  /** service → nodes running a container of it */
  private readonly nodesByService = new Map<string, Set<string>>();
  /** node → services it runs containers of, and its name */
  private readonly nodes = new Map<string, { name: string; services: Set<string> }>();
  /** node name → node ids holding it (admin labels belong to the name) */
  private readonly nodesByName = new Map<string, Set<string>>();
  /** While loading: records the change feed already delivered, which the (older) loaded list must not overwrite. */
  private touched: Set<string> | undefined = new Set();

  /**
   * Fills the index from every service and node record. Changes applied
   * since the index was made (subscribe first, then list) are newer than the
   * list, so records they touched are skipped.
   */
  load(services: readonly ServiceRecord[], nodes: readonly NodeRecord[]): void {
    const touched = this.touched ?? new Set<string>();
    this.touched = undefined;
    for (const s of services) if (!touched.has(`service:${s.name}`)) this.setService(s.name, s);
    for (const n of nodes) if (!touched.has(`node:${n.id}`)) this.setNode(n.id, n);
  }

  /**
   * Applies one commit's changes to the index and returns the nodes they
   * affect: the node itself for its record, the nodes running a service for
   * the service, the nodes running a service granted a secret for the
   * secret, the nodes holding a name for its admin labels.
   */
  apply(changes: readonly StoreChange[]): Set<string> {
    const affected = new Set<string>();
    for (const change of changes) {
      switch (change.kind) {
        case 'service':
          this.touched?.add(`service:${change.name}`);
          this.setService(change.name, change.record);
          for (const node of this.nodesByService.get(change.name) ?? []) affected.add(node);
          break;
        case 'node':
          this.touched?.add(`node:${change.id}`);
          this.setNode(change.id, change.record);
          affected.add(change.id);
          break;
        case 'secret':
          for (const service of this.servicesBySecret.get(change.name) ?? []) for (const node of this.nodesByService.get(service) ?? []) affected.add(node);
          break;
        case 'node-labels':
          for (const node of this.nodesByName.get(change.name) ?? []) affected.add(node);
          break;
        case 'revoked':
        case 'admin-cert':
        case 'replica':
        case 'node-session':
        case 'keyring':
        case 'ca':
          break;
      }
    }
    return affected;
  }

  /** Services granted `secret` (for tests and propagation: who should hold it). */
  servicesUsing(secret: string): ReadonlySet<string> {
    return this.servicesBySecret.get(secret) ?? new Set();
  }

  /** Nodes running a container of a service granted `secret`: the candidates to hold it (placement still decides). */
  nodesUsing(secret: string): Set<string> {
    const out = new Set<string>();
    for (const service of this.servicesUsing(secret)) for (const node of this.nodesRunning(service)) out.add(node);
    return out;
  }

  /** The name of a node in the index. */
  nodeName(id: string): string | undefined {
    return this.nodes.get(id)?.name;
  }

  /** Nodes running a container of `service`. */
  nodesRunning(service: string): ReadonlySet<string> {
    return this.nodesByService.get(service) ?? new Set();
  }

  private setService(name: string, record: ServiceRecord | undefined): void {
    for (const secret of this.secretsByService.get(name) ?? []) removeFrom(this.servicesBySecret, secret, name);
    this.secretsByService.delete(name);
    if (!record) return;
    const secrets = new Set(record.grants.map((g) => g.source));
    this.secretsByService.set(name, secrets);
    for (const secret of secrets) addTo(this.servicesBySecret, secret, name);
  }

  private setNode(id: string, record: NodeRecord | undefined): void {
    const before = this.nodes.get(id);
    if (before) {
      for (const service of before.services) removeFrom(this.nodesByService, service, id);
      removeFrom(this.nodesByName, before.name, id);
      this.nodes.delete(id);
    }
    if (!record) return;
    const services = new Set(record.containers.map((c) => c.service));
    this.nodes.set(id, { name: record.name, services });
    for (const service of services) addTo(this.nodesByService, service, id);
    addTo(this.nodesByName, record.name, id);
  }
}
