/**
 * Rotation schedules: "give NAME a new generated value every PERIOD". The
 * policy is data in the secret's record (durable, so it survives restarts);
 * the store's scheduler asks this module what is due. The first rotation is
 * one period after the schedule is set; a rotation that fell due while the
 * store was down runs at start, once (not once per missed period: the point
 * is a fresh value, not a count of them), and the next is one period later.
 */
import { HushError } from '../errors/index.js';
import { MAX_GENERATE_BYTES, MIN_GENERATE_BYTES, type Charset } from './generate.js';

export interface RotationSchedule {
  /** The period, as given ("24h"), kept for display. */
  every: string;
  everyMs: number;
  /** Random bytes per new value. */
  generate: number;
  charset: Charset;
  /** When the next rotation is due (ISO time). */
  nextDue: string;
}

/**
 * One second at least: tests use seconds, but a real secret rotated more
 * often than every few minutes only churns nodes and containers (each
 * rotation is a push and, with reload signals, a reload). Docs say so.
 */
export const MIN_PERIOD_MS = 1000;
/** A year and a bit: a longer period is a typo more likely than a wish. */
export const MAX_PERIOD_MS = 400 * 24 * 3600 * 1000;

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** "90s", "30m", "24h", "7d", "2w", or a combination like "1h30m". */
export function parsePeriod(text: string): number {
  const parts = /^(?:\d+[smhdw])+$/.test(text) ? [...text.matchAll(/(\d+)([smhdw])/g)] : [];
  const ms = parts.reduce((sum, [, n, unit]) => sum + Number(n) * UNITS[unit!]!, 0);
  if (parts.length === 0 || !Number.isSafeInteger(ms)) throw new HushError('bad_request', `every: give a period like 90s, 30m, 24h or 7d, not "${text}"`);
  if (ms < MIN_PERIOD_MS || ms > MAX_PERIOD_MS) throw new HushError('bad_request', `every: a period from 1s to 400d, not "${text}"`);
  return ms;
}

/** A new schedule, first due one period after `now`. */
export function newSchedule(every: string, generate: number, charset: Charset, now: Date): RotationSchedule {
  const everyMs = parsePeriod(every);
  if (!Number.isInteger(generate) || generate < MIN_GENERATE_BYTES || generate > MAX_GENERATE_BYTES) {
    throw new HushError('bad_request', `generate: give a whole number of bytes from ${MIN_GENERATE_BYTES} to ${MAX_GENERATE_BYTES}, not ${String(generate)}`);
  }
  return { every, everyMs, generate, charset, nextDue: new Date(now.getTime() + everyMs).toISOString() };
}

export function isDue(schedule: RotationSchedule, now: Date): boolean {
  return Date.parse(schedule.nextDue) <= now.getTime();
}

/** The schedule after a rotation ran at `now`: next due one period later (missed periods are not made up). */
export function afterRun(schedule: RotationSchedule, now: Date): RotationSchedule {
  return { ...schedule, nextDue: new Date(now.getTime() + schedule.everyMs).toISOString() };
}
