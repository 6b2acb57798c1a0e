/**
 * Exponential backoff with full jitter (a random wait between 0 and the
 * exponential bound): after a store restart, hundreds of agents spread their
 * reconnects instead of arriving together.
 */
export interface BackoffOptions {
  baseMs?: number;
  capMs?: number;
  random?: () => number;
}

export class Backoff {
  readonly baseMs: number;
  readonly capMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(opts: BackoffOptions = {}) {
    this.baseMs = opts.baseMs ?? 200;
    this.capMs = opts.capMs ?? 10_000;
    this.#random = opts.random ?? Math.random;
  }

  /** The wait before the next attempt; each call widens the window up to the cap. */
  next(): number {
    const bound = Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.floor(this.#random() * bound);
  }

  reset(): void {
    this.#attempt = 0;
  }

  get attempts(): number {
    return this.#attempt;
  }
}
