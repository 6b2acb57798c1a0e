/** Percentiles and their formatting for latency samples (milliseconds), and a process's memory. */
import { readFile } from 'node:fs/promises';

export interface Spread {
  n: number;
  min: number;
  p50: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles: p99 of 100 samples is the 99th smallest, never an interpolation between two. */
export function spreadOf(samples: number[]): Spread {
  const sorted = Float64Array.from(samples).sort();
  const rank = (q: number) => (sorted.length === 0 ? NaN : sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!);
  return { n: sorted.length, min: rank(0), p50: rank(0.5), p99: rank(0.99), max: sorted.length === 0 ? NaN : sorted[sorted.length - 1]! };
}

export const ms = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

export const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

/** VmRSS and VmHWM (peak) of a process, in bytes, from /proc. */
export async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}
