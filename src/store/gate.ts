/**
 * A shared/exclusive gate for async work: any number of shared holders at once,
 * or one exclusive holder once the shared ones have drained. Used so that no
 * value is sealed under a KEK while that KEK is being rotated away.
 */
export class SharedExclusiveGate {
  private sharedHolders = 0;
  private exclusiveTurn: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  async shared<T>(work: () => Promise<T>): Promise<T> {
    while (this.exclusiveTurn) await this.exclusiveTurn;
    this.sharedHolders++;
    try {
      return await work();
    } finally {
      if (--this.sharedHolders === 0) this.drained?.();
    }
  }

  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    while (this.exclusiveTurn) await this.exclusiveTurn;
    let release!: () => void;
    this.exclusiveTurn = new Promise((resolve) => (release = resolve));
    try {
      if (this.sharedHolders > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      return await work();
    } finally {
      this.drained = undefined;
      this.exclusiveTurn = undefined;
      release();
    }
  }
}
