/**
 * What the container registry needs from the session with the store. The
 * runtime API and its tests depend on this, not on gRPC.
 */
import { HushError } from '../errors/index.js';
import type { WireContainer, WireDecision } from '../protocol/index.js';

export interface StoreLink {
  /**
   * Asks the store whether `container` may start here. Resolves with the
   * store's decision (allowed or not, with a reason); rejects with
   * HushError('unavailable') when the store cannot be reached,
   * HushError('forbidden') when this node is revoked, or DecisionTimeout.
   */
  requestStart(container: WireContainer, timeoutMs: number): Promise<WireDecision>;
  /** Tells the store a container stopped. Fire-and-forget: the next Hello reconciles if the store is away. */
  notifyStop(containerId: string): void;
  /** Tells the store who a registered container is to its runtime (its runtime fields set). Fire-and-forget, like a stop: the next Hello carries it too. */
  notifyIdentified(container: WireContainer): void;
}

/** The store did not answer in time: a HushError 'timeout', so the runtime API answers 504. */
export class DecisionTimeout extends HushError {
  constructor(timeoutMs: number) {
    super('timeout', `the store did not decide within ${Math.round(timeoutMs / 1000)} s`);
    this.name = 'DecisionTimeout';
  }
}
