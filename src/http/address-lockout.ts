/**
 * Failed authentications per peer address (refused join tokens on the node
 * port, failed client authentication on the admin HTTPS listener). A
 * token's secret or a certificate's key is far too large to guess; this keeps a guesser (or a client
 * stuck on a wrong credential) from costing a check, an audit record and a
 * log line per attempt, and makes the attempts visible: after `maxFailures`
 * failures from one address within `windowMs`, that address is refused
 * unread for `lockMs`, and the caller logs the lockout once. Clients behind
 * one NAT address share its count; a success does not clear it (a guesser
 * could interleave one); failures while locked out are not counted, so a
 * lockout ends `lockMs` after it began.
 */

export interface LockoutLimits {
  /** Failures from one address, within `windowMs`, that lock it out. */
  maxFailures: number;
  windowMs: number;
  /** How long a locked-out address is refused. */
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

export class AddressLockout {
  // Map keeps insertion order: re-inserting on each touch makes the first entry the one idle longest.
  private readonly tallies = new Map<string, Tally>();

  constructor(
    private readonly limits: LockoutLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** The lockout in force for `address`, if any (its request is then refused unread). */
  check(address: string): Lockout | undefined {
    const tally = this.tallies.get(address);
    if (!tally) return undefined;
    const left = tally.lockedUntil - this.now();
    if (left <= 0) return undefined;
    return { address, retryAfterMs: left };
  }

  /** Counts a failure; returns the failure count when this one started a lockout (for the caller to log). */
  failed(address: string): number | undefined {
    const now = this.now();
    let tally = this.tallies.get(address);
    if (tally && tally.lockedUntil > now) return undefined;
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
