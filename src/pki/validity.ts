import { HushError } from '../errors/index.js';

/**
 * Certificates start a minute in the past so that a peer whose clock runs a
 * little behind ours does not reject a certificate we just issued.
 */
export const CLOCK_SKEW_MS = 60_000;

const DAY_MS = 86_400_000;

export function daysToMs(days: number): number {
  return days * DAY_MS;
}

/** Checked here because a NaN or negative lifetime would otherwise turn into a nonsensical but signed certificate. */
export function checkLifetime(what: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0) {
    throw new HushError('bad_request', `${what} must be a positive number, got ${value}`);
  }
}
