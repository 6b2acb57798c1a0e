/**
 * `--wait` on `hush secret rotate|rollback` and `hush deploy`: returns once
 * every entitled node has acknowledged the new versions, by polling the
 * propagation route (one small GET per secret every POLL_MS: the store
 * answers it from memory). A progress bar of acked/total nodes on a terminal
 * (cli-progress, on stderr), plain lines otherwise; after the timeout, an
 * error naming the nodes that lag (exit 1).
 */
import { InvalidArgumentError, Option } from 'commander';
import { HushError } from '../errors/index.js';
import type { Propagation } from '../rotation/index.js';
import type { ApiClient } from './client.js';

const POLL_MS = 200;
/** How long --wait waits when --timeout is not given. */
export const DEFAULT_WAIT_SECONDS = 60;

export const waitOption = () => new Option('--wait', 'return once every node entitled to the secret has acknowledged the new version');
export const timeoutOption = () =>
  new Option('--timeout <seconds>', 'with --wait: give up after this long, naming the nodes that lag (exit 1)').default(DEFAULT_WAIT_SECONDS).argParser((text: string) => {
    const n = Number(text);
    if (!/^[0-9]+(\.[0-9]+)?$/.test(text) || n <= 0 || n > 86400) throw new InvalidArgumentError(`--timeout takes seconds above 0, up to 86400, not "${text}".`);
    return n;
  });


export interface WaitTarget {
  secret: string;
  version: number;
}

interface Tally {
  total: number;
  acked: number;
  lagging: string[];
}

/** Per node: acked once it holds every target it is entitled to, at that version or newer. */
function tally(targets: readonly WaitTarget[], reached: readonly Propagation[]): Tally {
  const nodes = new Map<string, { label: string; missing: string[] }>();
  reached.forEach((p, i) => {
    const target = targets[i]!;
    for (const n of p.nodes) {
      const entry = nodes.get(n.node) ?? { label: n.name ? `${n.name} (${n.node})` : n.node, missing: [] };
      if (n.version === undefined || n.version < target.version) entry.missing.push(`${target.secret} ${n.version === undefined ? 'none' : `v${n.version}`} < v${target.version}`);
      nodes.set(n.node, entry);
    }
  });
  const lagging = [...nodes.values()].filter((n) => n.missing.length > 0).map((n) => `${n.label}: ${n.missing.join(', ')}`);
  return { total: nodes.size, acked: nodes.size - lagging.length, lagging };
}

export async function waitForPropagation(client: ApiClient, targets: readonly WaitTarget[], timeoutSeconds: number): Promise<void> {
  const what = targets.map((t) => `${t.secret} v${t.version}`).join(', ');
  if (targets.length === 0) {
    process.stderr.write('nothing to wait for: no secret got a new version\n');
    return;
  }
  const deadline = Date.now() + timeoutSeconds * 1000;
  const poll = async () => {
    const reached: Propagation[] = [];
    for (const t of targets) reached.push(await client.get<Propagation>(`/v1/secrets/${encodeURIComponent(t.secret)}/propagation?version=${t.version}`));
    return tally(targets, reached);
  };
  let state = await poll();
  if (state.total === 0) {
    process.stderr.write(`no node is entitled to ${targets.map((t) => t.secret).join(', ')} (no running container of a service granted it): nothing to wait for\n`);
    return;
  }
  const progress = await startProgress(state.total, what);
  try {
    for (;;) {
      progress.update(state.acked, state.total);
      if (state.acked === state.total) break;
      if (Date.now() >= deadline) {
        throw new HushError('timeout', `timed out after ${timeoutSeconds}s: ${state.acked} of ${state.total} nodes acknowledged ${what}; lagging: ${state.lagging.join('; ')}`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
      state = await poll();
    }
  } finally {
    progress.stop();
  }
  process.stderr.write(`${what}: all ${state.total} entitled node${state.total === 1 ? '' : 's'} acknowledged\n`);
}

interface Progress {
  update(acked: number, total: number): void;
  stop(): void;
}

/** A bar on a terminal; otherwise a line each time the count changes (logs and CI read those). */
async function startProgress(total: number, what: string): Promise<Progress> {
  if (process.stderr.isTTY) {
    const { default: cliProgress } = await import('cli-progress');
    const bar = new cliProgress.SingleBar({ format: `${what} [{bar}] {value}/{total} nodes acked`, stream: process.stderr, hideCursor: true, clearOnComplete: false }, cliProgress.Presets.shades_classic);
    bar.start(total, 0);
    return {
      update: (acked, t) => {
        bar.setTotal(t);
        bar.update(acked);
      },
      stop: () => bar.stop(),
    };
  }
  let last = '';
  return {
    update: (acked, t) => {
      const line = `${what}: ${acked}/${t} nodes acked`;
      if (line !== last) process.stderr.write(line + '\n');
      last = line;
    },
    stop: () => undefined,
  };
}
