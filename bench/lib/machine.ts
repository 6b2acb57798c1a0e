/** What the figures were measured on, for the header of docs/performance.md. */
import { readFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';

/** Machine-wide CPU ticks from /proc/stat. */
async function machineTicks(): Promise<{ busy: number; total: number }> {
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  return { busy: total - fields[3] - fields[4], total }; // minus idle and iowait
}

/** CPU ticks used by this process and its reaped children (the servers and clients the benches started). */
async function ownTicks(): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  return f[11] + f[12] + f[13] + f[14]; // utime stime cutime cstime
}

/**
 * Watches how busy the machine is with work other than the benches: other
 * work competes for the same cores and disk and skews every figure.
 * Returns a function that gives the share of all CPU time others used.
 */
export async function watchBackgroundLoad(): Promise<() => Promise<number | undefined>> {
  try {
    const [m0, own0] = await Promise.all([machineTicks(), ownTicks()]);
    return async () => {
      const [m1, own1] = await Promise.all([machineTicks(), ownTicks()]);
      return Math.max(0, (m1.busy - m0.busy - (own1 - own0)) / (m1.total - m0.total));
    };
  } catch {
    return async () => undefined;
  }
}

export async function describeMachine(background: number | undefined): Promise<string[]> {
  const gib = (totalmem() / 2 ** 30).toFixed(1);
  const busy = background === undefined ? 'unknown' : `${Math.round(background * 100)}%`;
  return [
    `- CPU: ${availableParallelism()} × ${cpus()[0]?.model.trim() ?? 'unknown'}`,
    `- memory: ${gib} GiB`,
    `- kernel: Linux ${release()}`,
    `- Node.js ${process.version}`,
    `- date: ${new Date().toISOString()}`,
    `- other work on the machine during the run: ${busy} of all CPU time (1-minute load average at the end ${loadavg()[0].toFixed(2)}); ` +
      'when this is high, the figures are low and noisy',
  ];
}
