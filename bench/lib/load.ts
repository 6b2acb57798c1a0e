/**
 * A closed-loop load generator: `concurrency` loops, each starting its next
 * operation when the previous one finishes, until `count` operations are done
 * or `maxSeconds` pass (whichever first), so every run is bounded. The first
 * failure stops all loops.
 */
import { performance } from 'node:perf_hooks';

export interface LoadOptions {
  concurrency: number;
  count: number;
  maxSeconds: number;
}

export interface LoadRun {
  ops: number;
  seconds: number;
  /** Per-operation latency in milliseconds, in completion order. */
  latencies: number[];
}

export interface LoadSummary {
  ops: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
}

export async function runLoad(options: LoadOptions, op: (i: number) => Promise<void>): Promise<LoadRun> {
  const latencies: number[] = [];
  const start = performance.now();
  const deadline = start + options.maxSeconds * 1000;
  let next = 0;
  let failed = false;
  const loop = async () => {
    while (!failed && next < options.count && performance.now() < deadline) {
      const i = next++;
      const t0 = performance.now();
      try {
        await op(i);
      } catch (err) {
        failed = true;
        throw err;
      }
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, loop));
  return { ops: latencies.length, seconds: (performance.now() - start) / 1000, latencies };
}

/** Merges runs that went on at the same time (e.g. in several client processes). */
export function summarize(runs: LoadRun[]): LoadSummary {
  const ops = runs.reduce((n, r) => n + r.ops, 0);
  const seconds = Math.max(...runs.map((r) => r.seconds));
  const sorted = Float64Array.from(runs.flatMap((r) => r.latencies)).sort();
  const pick = (q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
  return { ops, seconds, perSecond: ops / seconds, p50: pick(0.5), p99: pick(0.99) };
}

export const fmtRate = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
export const fmtMs = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
export const fmtPct = (n: number): string => (Number.isFinite(n) ? `${(n * 100).toFixed(1)}%` : 'n/a');
export const fmtX = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(2)}×` : 'n/a');
