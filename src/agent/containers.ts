/**
 * The containers running on this node, as the runtime API registered them.
 * A container is registered only after the store allowed it (so its secrets
 * are already in the cache) and its mount exists; the Hello of every new
 * session reports this list, which is how the store learns it again after a
 * restart on either side.
 */
import type { WireContainer } from '../api/index.js';
import { HushError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { SecretCache } from './cache.js';
import type { MountManager } from './mounts.js';
import { sourceForService } from './secret-source.js';
import { DecisionTimeout, type StoreLink } from './store-link.js';

export const DEFAULT_DECISION_TIMEOUT_MS = 15_000;

export interface ContainerView {
  id: string;
  service: string;
  /** Target file names the container sees, from the service's grants. */
  secrets: string[];
  mount: string | null;
  startedAt: string;
}

interface Registered {
  id: string;
  service: string;
  mount: string | null;
  startedAt: Date;
}

export interface RegistryOptions {
  link: StoreLink;
  cache: SecretCache;
  mounts: MountManager;
  log: Logger;
  decisionTimeoutMs?: number;
}

export class ContainerRegistry {
  readonly #opts: RegistryOptions;
  readonly #running = new Map<string, Registered>();
  /** Ids between the request and the decision, so a concurrent duplicate is refused too. */
  readonly #starting = new Set<string>();

  constructor(opts: RegistryOptions) {
    this.#opts = opts;
  }

  list(): ContainerView[] {
    return [...this.#running.values()].map((c) => this.#view(c));
  }

  /** For the session's Hello. */
  wire(): WireContainer[] {
    return [...this.#running.values()].map((c) => ({ id: c.id, service: c.service }));
  }

  async start(container: WireContainer): Promise<ContainerView> {
    const { id, service } = container;
    if (this.#running.has(id) || this.#starting.has(id)) throw new HushError('conflict', `container "${id}" is already registered on this node`);
    this.#starting.add(id);
    try {
      const decision = await this.#opts.link.requestStart({ id, service }, this.#opts.decisionTimeoutMs ?? DEFAULT_DECISION_TIMEOUT_MS).catch((err: unknown) => {
        // The store may have registered it just before the timeout; tell it we did not, so no grant lingers.
        if (err instanceof DecisionTimeout) this.#opts.link.notifyStop(id);
        throw err;
      });
      if (!decision.allowed) {
        this.#opts.log.info({ container: id, service, reason: decision.reason }, 'store refused container');
        throw new HushError('forbidden', decision.reason || `the store refused container "${id}" of service "${service}"`);
      }
      this.#warnIfIncomplete(id, service);
      let mount: string | null;
      try {
        mount = await this.#opts.mounts.mount({ containerId: id, service, source: sourceForService(this.#opts.cache, service) });
      } catch (err) {
        this.#opts.link.notifyStop(id);
        throw err;
      }
      const registered: Registered = { id, service, mount, startedAt: new Date() };
      this.#running.set(id, registered);
      this.#opts.log.info({ container: id, service, revision: decision.revision, mount }, 'container registered');
      return this.#view(registered);
    } finally {
      this.#starting.delete(id);
    }
  }

  async stop(id: string): Promise<void> {
    const registered = this.#running.get(id);
    if (!registered) throw new HushError('not_found', `no container "${id}" on this node`);
    this.#running.delete(id);
    // Tell the store first: it then stops sending (and the node drops) secrets no other container here needs.
    this.#opts.link.notifyStop(id);
    await this.#opts.mounts.unmount(id);
    this.#opts.log.info({ container: id, service: registered.service }, 'container stopped');
  }

  #view(c: Registered): ContainerView {
    return {
      id: c.id,
      service: c.service,
      secrets: (this.#opts.cache.grants(c.service) ?? []).map((g) => g.target),
      mount: c.mount,
      startedAt: c.startedAt.toISOString(),
    };
  }

  /** The store promises the secrets before the decision; if one is missing it is a store bug worth seeing in the log. */
  #warnIfIncomplete(id: string, service: string): void {
    const missing = (this.#opts.cache.grants(service) ?? []).filter((g) => !this.#opts.cache.get(g.source)).map((g) => g.source);
    if (missing.length > 0) this.#opts.log.warn({ container: id, service, missing }, 'store allowed a container before delivering all its secrets');
  }
}
