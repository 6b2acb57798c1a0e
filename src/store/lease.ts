/**
 * Leases: at most one holder of a named duty across every store process that
 * shares a backend (the rotation scheduler runs due rotations; with several
 * store replicas exactly one of them must). A backend that many processes
 * share implements `LeaseProvider` with its own primitive (etcd: a lease kept
 * alive by its holder, and a key created under it with a create-if-absent
 * transaction); the embedded engine is opened by one process only, so that
 * process holds every lease for as long as it runs (`LocalLeases`).
 *
 * A holder can lose its lease (an etcd lease expires when the process stalls
 * past its TTL): `lost` aborts then, and the work that holder commits carries
 * `fence()` in its conditions, so a commit made after the loss fails instead
 * of racing the new holder. That is what makes "exactly one runner" hold even
 * for a holder that does not yet know it was replaced.
 */
import type { KvCondition } from './backend.js';

export interface HeldLease {
  readonly name: string;
  /** Aborted when the lease is lost or released: stop the duty at once. */
  readonly lost: AbortSignal;
  /** Conditions to add to every commit made under the lease: they fail once another process holds it. Empty where only one process exists. */
  fence(): KvCondition[];
  /** Gives the lease up (another waiting process may take it). */
  release(): Promise<void>;
}

export interface LeaseProvider {
  /**
   * Resolves once this process holds `name`; waits while another holds it.
   * Rejects with an AbortError if `signal` aborts first (the process is
   * shutting down).
   */
  acquire(name: string, signal?: AbortSignal): Promise<HeldLease>;
}

/** The leases of a backend only one process opens (the embedded engine): each is granted at once, and held until released. */
export class LocalLeases implements LeaseProvider {
  private readonly held = new Map<string, Promise<void>>();

  async acquire(name: string, signal?: AbortSignal): Promise<HeldLease> {
    // Within one process a duty still has one runner: a second acquire waits for the first release.
    while (this.held.has(name)) {
      signal?.throwIfAborted();
      await untilReleasedOrAborted(this.held.get(name)!, signal);
    }
    signal?.throwIfAborted();
    let release!: () => void;
    this.held.set(name, new Promise<void>((resolve) => (release = resolve)));
    const controller = new AbortController();
    return {
      name,
      lost: controller.signal,
      fence: () => [],
      release: async () => {
        if (controller.signal.aborted) return;
        controller.abort();
        this.held.delete(name);
        release();
      },
    };
  }
}

/** Waits for `released`, or less if `signal` aborts first (the caller then throws). */
function untilReleasedOrAborted(released: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return released;
  return new Promise<void>((resolve) => {
    const done = () => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    void released.then(done);
  });
}
