/**
 * The containers running on this node, as the runtime API registered them.
 * A container is registered only after the store allowed it (so its secrets
 * are already in the cache) and its mount exists; the Hello of every new
 * session reports this list, which is how the store learns it again after a
 * restart on either side.
 */
import type { WireContainer } from '../protocol/index.js';
import { HushError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { LookupRecord } from '../tmpfs-mount/index.js';
import type { SecretCache } from './cache.js';
import type { MountDetails, MountManager } from './mounts.js';
import { isSameProcess, processStartTime } from './process-identity.js';
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
  /** Who the container is to its runtime, once known (the Docker plugin learns it from dockerd after the start). */
  runtime?: RuntimeIdentity;
}

/** A container as its runtime names it, e.g. Docker's id and name. */
export interface RuntimeIdentity {
  runtime: 'docker';
  id: string;
  name: string;
}

interface Registered {
  id: string;
  service: string;
  mount: string | null;
  startedAt: Date;
  /**
   * The registering process (e.g. `hush run`), by pid and start time: when it
   * is gone, so is the container. The start time keeps a reused pid from
   * passing for it (process-identity.ts).
   */
  owner?: { pid: number; startTime: number };
  /** Sent to the registering process when one of the container's secrets gets a new version. */
  reloadSignal?: NodeJS.Signals;
  /** Versions of its secrets it was last told about, to notice rotations. */
  versions: Map<string, number>;
  runtime?: RuntimeIdentity;
  /** How to tell it a secret has a new version when there is no registering process to signal (a Docker container: through dockerd). */
  reload?: () => void;
}

/** One container with what its mount knows: which FUSE implementation serves it, and who looked up which version. */
export interface ContainerDetails extends ContainerView {
  fuse: MountDetails['fuse'] | null;
  lookups: MountDetails['lookups'];
}

/** What a runtime client registers: the container, and optionally who to watch and signal. */
export interface ContainerStartRequest extends Pick<WireContainer, 'id' | 'service'> {
  pid?: number;
  /**
   * Field 22 of /proc/<pid>/stat as the registering process read it for
   * itself; when given, the agent refuses a pid that no longer names that
   * process. Without it the agent reads it at registration.
   */
  pidStartTime?: number;
  reloadSignal?: NodeJS.Signals;
}

/** How often registered pids are checked for liveness. */
const LIVENESS_INTERVAL_MS = 500;

export interface RegistryOptions {
  link: StoreLink;
  cache: SecretCache;
  mounts: MountManager;
  log: Logger;
  decisionTimeoutMs?: number;
  /** Told a container's mount records just before the mount goes (read-reports.ts). */
  reads?: { stopped(containerId: string, lookups: LookupRecord[] | null): void };
}

export class ContainerRegistry {
  readonly #opts: RegistryOptions;
  readonly #running = new Map<string, Registered>();
  /** Ids between the request and the decision, so a concurrent duplicate is refused too. */
  readonly #starting = new Set<string>();

  readonly #liveness: NodeJS.Timeout;
  readonly #unwatchCache: () => void;

  constructor(opts: RegistryOptions) {
    this.#opts = opts;
    this.#liveness = setInterval(() => this.#reapExited(), LIVENESS_INTERVAL_MS).unref();
    // After every other listener of this change (the mounts' among them) has run: a container
    // told about a new version must find it in its mount.
    this.#unwatchCache = opts.cache.onChange(() => queueMicrotask(() => this.#signalRotations()));
  }

  /** Stops watching; at agent shutdown. */
  close(): void {
    clearInterval(this.#liveness);
    this.#unwatchCache();
  }

  list(): ContainerView[] {
    return [...this.#running.values()].map((c) => this.#view(c));
  }

  get(id: string): ContainerDetails {
    const registered = this.#running.get(id);
    if (!registered) throw new HushError('not_found', `no container "${id}" on this node`);
    const details = this.#opts.mounts.details?.(id);
    return { ...this.#view(registered), fuse: details?.fuse ?? null, lookups: details?.lookups ?? null };
  }

  /** Each registered container with what its mount recorded of lookups, for the read reports. */
  reads(): { id: string; lookups: LookupRecord[] | null }[] {
    return [...this.#running.keys()].map((id) => ({ id, lookups: this.#opts.mounts.details?.(id)?.lookups ?? null }));
  }

  /** For the session's Hello. */
  wire(): WireContainer[] {
    return [...this.#running.values()].map((c) => wireContainer(c));
  }

  async start(container: ContainerStartRequest): Promise<ContainerView> {
    const { id, service, reloadSignal } = container;
    if (this.#running.has(id) || this.#starting.has(id)) throw new HushError('conflict', `container "${id}" is already registered on this node`);
    const owner = registeringProcess(container);
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
      const registered: Registered = { id, service, mount, startedAt: new Date(), owner, reloadSignal, versions: this.#versionsOf(service) };
      this.#running.set(id, registered);
      this.#opts.log.info({ container: id, service, revision: decision.revision, mount }, 'container registered');
      return this.#view(registered);
    } finally {
      this.#starting.delete(id);
    }
  }

  /**
   * Attaches who a registered container is and, optionally, how to tell it
   * about a rotation; both become known only after it started (the Docker
   * plugin asks dockerd). False when no such container is registered.
   */
  identify(id: string, runtime: RuntimeIdentity, reload?: () => void): boolean {
    const registered = this.#running.get(id);
    if (!registered) return false;
    registered.runtime = runtime;
    registered.reload = reload;
    this.#opts.log.info({ container: id, service: registered.service, runtime: runtime.runtime, runtimeId: runtime.id, runtimeName: runtime.name }, 'container identified');
    this.#opts.link.notifyIdentified(wireContainer(registered));
    return true;
  }

  async stop(id: string): Promise<void> {
    const registered = this.#running.get(id);
    if (!registered) throw new HushError('not_found', `no container "${id}" on this node`);
    this.#running.delete(id);
    // Its reads, before the mount and its records go, and before the store hears of the stop.
    this.#opts.reads?.stopped(id, this.#opts.mounts.details?.(id)?.lookups ?? null);
    // Tell the store first: it then stops sending (and the node drops) secrets no other container here needs.
    this.#opts.link.notifyStop(id);
    await this.#opts.mounts.unmount(id);
    this.#opts.log.info({ container: id, service: registered.service, ...(registered.runtime ? { runtimeId: registered.runtime.id } : {}) }, 'container stopped');
  }

  #versionsOf(service: string): Map<string, number> {
    const versions = new Map<string, number>();
    for (const grant of this.#opts.cache.grants(service) ?? []) {
      const held = this.#opts.cache.get(grant.source);
      if (held) versions.set(grant.source, held.version);
    }
    return versions;
  }

  /** A container whose registering process died (kill -9 of `hush run`) is stopped, so its mount goes, even if its pid was reused since. */
  #reapExited(): void {
    for (const c of this.#running.values()) {
      if (!c.owner || isSameProcess(c.owner.pid, c.owner.startTime)) continue;
      this.#opts.log.info({ container: c.id, pid: c.owner.pid }, 'registering process is gone; stopping its container');
      void this.stop(c.id).catch(() => undefined);
    }
  }

  /** Sends each container's reload signal when one of its secrets changed version. */
  #signalRotations(): void {
    for (const c of this.#running.values()) {
      const now = this.#versionsOf(c.service);
      const rotated = [...now].some(([name, version]) => c.versions.has(name) && c.versions.get(name) !== version);
      c.versions = now;
      if (rotated && c.reload) {
        c.reload();
        continue;
      }
      if (!rotated || !c.reloadSignal || !c.owner) continue;
      if (!isSameProcess(c.owner.pid, c.owner.startTime)) {
        // Its pid may belong to another process by now; the liveness check stops the container.
        this.#opts.log.warn({ container: c.id, pid: c.owner.pid }, 'not signalling container: its registering process is gone');
        continue;
      }
      try {
        process.kill(c.owner.pid, c.reloadSignal);
        this.#opts.log.info({ container: c.id, signal: c.reloadSignal }, 'signalled container: a secret has a new version');
      } catch (err) {
        this.#opts.log.warn({ container: c.id, err: (err as Error).message }, 'could not signal container');
      }
    }
  }

  #view(c: Registered): ContainerView {
    return {
      id: c.id,
      service: c.service,
      secrets: (this.#opts.cache.grants(c.service) ?? []).map((g) => g.target),
      mount: c.mount,
      startedAt: c.startedAt.toISOString(),
      ...(c.runtime ? { runtime: c.runtime } : {}),
    };
  }

  /** The store promises the secrets before the decision; if one is missing it is a store bug worth seeing in the log. */
  #warnIfIncomplete(id: string, service: string): void {
    const missing = (this.#opts.cache.grants(service) ?? []).filter((g) => !this.#opts.cache.get(g.source)).map((g) => g.source);
    if (missing.length > 0) this.#opts.log.warn({ container: id, service, missing }, 'store allowed a container before delivering all its secrets');
  }
}

/** The process to watch and signal, checked before the store is asked: a pid that names no running process (or not the one that asked) is bad input. */
function registeringProcess({ pid, pidStartTime }: ContainerStartRequest): Registered['owner'] {
  if (pid === undefined) {
    if (pidStartTime !== undefined) throw new HushError('bad_request', 'field "pidStartTime" needs field "pid"');
    return undefined;
  }
  const startTime = processStartTime(pid);
  if (startTime === undefined) throw new HushError('bad_request', `field "pid": no process ${pid} is running on this node`);
  if (pidStartTime !== undefined && pidStartTime !== startTime) {
    throw new HushError('bad_request', `field "pidStartTime": process ${pid} started at ${startTime}, not ${pidStartTime} (clock ticks after boot): the process that asked is gone and its pid was reused`);
  }
  return { pid, startTime };
}

/** A registered container as the store hears of it: with its runtime identity once known. */
function wireContainer(c: Registered): WireContainer {
  return c.runtime ? { id: c.id, service: c.service, runtime: c.runtime.runtime, runtime_id: c.runtime.id, runtime_name: c.runtime.name } : { id: c.id, service: c.service };
}
