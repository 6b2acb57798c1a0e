/**
 * What the node holds: the latest delivered version of each secret it is
 * entitled to (sealed, see secret-version.ts) and the grants of each service
 * with containers here. Only the session writes to it, by applying the
 * store's snapshots and deltas; readers (the runtime API, the FUSE mounts)
 * look things up at the moment they need them, so a new version is visible
 * to the next lookup and a version already handed out stays readable.
 */
import type { WireDelta, WireGrant, WireHeldSecret, WireSecretVersion, WireServiceGrants, WireSnapshot } from '../protocol/index.js';
import type { Grant } from '../acl/index.js';
import { log } from '../log/index.js';
import { Sealer } from './sealer.js';
import { SecretVersion } from './secret-version.js';
import { TemplateRenderer } from './templates.js';

export interface HeldSecret {
  name: string;
  version: number;
}

export interface HeldService {
  service: string;
  grants: Grant[];
}

export interface HeldView {
  revision: number;
  secrets: HeldSecret[];
  services: HeldService[];
}

export class SecretCache {
  #sealer = new Sealer();
  #secrets = new Map<string, SecretVersion>();
  /** service -> target -> grant: a FUSE lookup by file name is one map read. */
  #services = new Map<string, Map<string, Grant>>();
  /** Last mtime shown per secret name, kept across removals so a re-added secret never goes back in time. */
  #mtimes = new Map<string, number>();
  #revision = 0;
  #listeners = new Set<() => void>();
  #templates = new TemplateRenderer(
    { get: (name) => this.#secrets.get(name), seal: (info, plaintext) => new SecretVersion(this.#sealer, info, plaintext) },
    log.child({ component: 'templates' }),
  );

  /** Revision of the last snapshot or delta applied; 0 before the first. */
  get revision(): number {
    return this.#revision;
  }

  /** Replaces everything held, as a Snapshot says to. */
  replace(snapshot: WireSnapshot): void {
    const secrets = new Map<string, SecretVersion>();
    for (const wire of snapshot.secrets) secrets.set(wire.name, this.#keepOrSeal(wire));
    this.#secrets = secrets;
    this.#services = new Map(snapshot.services.map((s) => [s.service, byTarget(s)]));
    this.#revision = snapshot.revision;
    this.#changed();
  }

  apply(delta: WireDelta): void {
    for (const name of delta.removals) this.#secrets.delete(name);
    for (const wire of delta.upserts) this.#secrets.set(wire.name, this.#keepOrSeal(wire));
    for (const service of delta.removed_services) this.#services.delete(service);
    for (const s of delta.services) this.#services.set(s.service, byTarget(s));
    this.#revision = delta.revision;
    this.#changed();
  }

  /** The current version of a secret, if the node holds it. */
  get(name: string): SecretVersion | undefined {
    return this.#secrets.get(name);
  }

  /**
   * What the file of `grant` (a grant of `service`) holds now: the secret's
   * current version, or for a template grant its current rendering.
   */
  fileVersion(service: string, grant: Grant): SecretVersion | undefined {
    if (!grant.template) return this.#secrets.get(grant.source);
    return this.#templates.render(service, grant, this.grants(service) ?? []);
  }

  /** The whole current value in a fresh buffer (zero it when done), or undefined. */
  read(name: string): Buffer | undefined {
    return this.#secrets.get(name)?.readAll();
  }

  grants(service: string): Grant[] | undefined {
    const grants = this.#services.get(service);
    return grants && [...grants.values()];
  }

  /** The grant that puts a file named `target` in the service's mount. */
  grant(service: string, target: string): Grant | undefined {
    return this.#services.get(service)?.get(target);
  }

  /** Names, versions and grants: everything but values, for status and tests. */
  held(): HeldView {
    return {
      revision: this.#revision,
      secrets: [...this.#secrets.values()].map((v) => ({ name: v.name, version: v.version })).sort((a, b) => a.name.localeCompare(b.name)),
      services: [...this.#services.entries()].map(([service, grants]) => ({ service, grants: [...grants.values()] })).sort((a, b) => a.service.localeCompare(b.service)),
    };
  }

  /**
   * Exactly what is held, for a Hello that asks to resume: each secret's
   * name, id and version (never a value) and the services whose grants are
   * held. The store sends a Delta over this.
   */
  holdings(): { revision: number; secrets: WireHeldSecret[]; services: string[] } {
    return {
      revision: this.#revision,
      secrets: [...this.#secrets.values()].map((v) => ({ name: v.name, secret_id: v.secretId, version: v.version })),
      services: [...this.#services.keys()],
    };
  }

  /** Called after every snapshot/delta, e.g. to refresh mounts or signal containers. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Drops everything held (a revoked node) but stays usable. */
  clear(): void {
    this.#templates.clear();
    this.#secrets = new Map();
    this.#services = new Map();
    this.#revision = 0;
    this.#changed();
  }

  /** Drops everything and wipes the key: versions still referenced become unreadable. */
  destroy(): void {
    this.clear();
    this.#sealer.destroy();
  }

  /**
   * A snapshot after a reconnect repeats what the node already holds; keeping
   * the existing object for an unchanged version means open files and mounts
   * see no change at all. The wire buffer is zeroed either way: it is the
   * last plaintext copy the agent controls.
   */
  #keepOrSeal(wire: WireSecretVersion): SecretVersion {
    try {
      const current = this.#secrets.get(wire.name);
      // Same version of the same secret: a secret removed and made again under this name restarts at version 1, so the id counts too.
      if (current && current.version === wire.version && current.secretId === (wire.secret_id ?? '')) return current;
      const createdAt = wire.created_at_ms > 0 ? wire.created_at_ms : Date.now();
      const mtime = Math.max(createdAt, (this.#mtimes.get(wire.name) ?? 0) + 1);
      this.#mtimes.set(wire.name, mtime);
      return new SecretVersion(this.#sealer, { name: wire.name, version: wire.version, createdAt: new Date(createdAt), mtime: new Date(mtime), secretId: wire.secret_id ?? '' }, wire.data);
    } finally {
      wire.data.fill(0);
    }
  }

  #changed(): void {
    this.#templates.retain(new Set(this.#services.keys()));
    for (const listener of this.#listeners) {
      // A failing reader must not stop the session from applying the store's updates.
      try {
        listener();
      } catch (err) {
        log.error({ err }, 'agent cache change listener failed');
      }
    }
  }

  toJSON(): HeldView {
    return this.held();
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `SecretCache(revision ${this.#revision}, ${this.#secrets.size} secrets sealed, ${this.#services.size} services)`;
  }
}

function byTarget(s: WireServiceGrants): Map<string, Grant> {
  return new Map(s.grants.map((g: WireGrant) => [g.target, { source: g.source, target: g.target, uid: g.uid, gid: g.gid, mode: g.mode, ...(g.template ? { template: true } : {}) }]));
}
