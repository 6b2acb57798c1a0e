/**
 * Join calls whose token was refused, per peer address. A join token's secret is 256 random
 * bits, so guessing it is hopeless; this keeps a guesser (or an agent stuck
 * on a wrong token) from costing the store a token check, an audit record
 * and a log line per attempt, and makes the attempts visible: after
 * `maxFailures` refused Joins from one address within `windowMs`, that
 * address's Joins are refused unread for `lockMs`, and the lockout is logged
 * once with the count. Nodes behind one NAT address share its count; a
 * granted Join does not clear it (a guesser could interleave one).
 */

export interface JoinThrottleLimits {
  /** Refused Joins from one address, within `windowMs`, that lock it out. */
  maxFailures: number;
  windowMs: number;
  /** How long a locked-out address's Joins are refused. */
  lockMs: number;
}

/** Addresses tracked at most; beyond, the one idle longest is forgotten (its next attempt starts a new count). */
const MAX_TRACKED = 10_000;

interface Tally {
  failures: number;
  windowStart: number;
  lockedUntil: number;
}

export interface Lockout {
  address: string;
  retryAfterMs: number;
}

export class JoinThrottle {
  // Map keeps insertion order: re-inserting on each touch makes the first entry the one idle longest.
  private readonly tallies = new Map<string, Tally>();

  constructor(
    private readonly limits: JoinThrottleLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** The lockout in force for `address`, if any (the Join is then refused unread). */
  check(address: string): Lockout | undefined {
    const tally = this.tallies.get(address);
    if (!tally) return undefined;
    const left = tally.lockedUntil - this.now();
    if (left <= 0) return undefined;
    return { address, retryAfterMs: left };
  }

  /** Counts a refused Join; returns the failure count when this one started a lockout (for the caller to log). */
  failed(address: string): number | undefined {
    const now = this.now();
    let tally = this.tallies.get(address);
    if (tally) this.tallies.delete(address);
    if (!tally || now - tally.windowStart > this.limits.windowMs) tally = { failures: 0, windowStart: now, lockedUntil: tally?.lockedUntil ?? 0 };
    tally.failures++;
    this.tallies.set(address, tally);
    if (this.tallies.size > MAX_TRACKED) this.tallies.delete(this.tallies.keys().next().value as string);
    if (tally.failures < this.limits.maxFailures) return undefined;
    const count = tally.failures;
    tally.lockedUntil = now + this.limits.lockMs;
    tally.failures = 0;
    tally.windowStart = now;
    return count;
  }
}
