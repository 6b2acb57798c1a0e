/**
 * Reconnect spread after a store restart (issue 14, Partitions): AGENTS
 * simulated agents hold sessions with a store; the store is killed (kill -9)
 * and started again on the same data directory and port. When does each agent
 * have its session back, counted from the moment the store accepts
 * connections again? No thundering herd means the reconnects spread out
 * instead of arriving at once.
 *
 * The agents are bench/lib/sim-fleet.ts's: each runs the agent's own
 * StoreSession, so it retries with the agent's own backoff (src/agent/backoff.ts,
 * exponential with full jitter) over the agent's own gRPC channel options; the
 * figure is the agent's, not a model of it.
 *
 * "Back" is the first TCP connect to the node port that succeeds, polled
 * every 5 ms while the store starts; a reconnect is the first snapshot a
 * session receives after the kill.
 *
 *   HUSH_BENCH_RECONNECT_AGENTS=100 npx tsx bench/reconnect.ts
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Agent } from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { ms, spreadOf } from './lib/latency.js';
import { watchBackgroundLoad } from './lib/machine.js';
import { freePort } from './lib/proc.js';
import { SimFleet } from './lib/sim-fleet.js';
import { call, startStoreProcess, type RunningStore } from './lib/store-process.js';
import { makeScratchDir } from './lib/tmp.js';
import { envInt } from './lib/env.js';

const AGENTS = envInt('HUSH_BENCH_RECONNECT_AGENTS', 100);
const PROCESSES = envInt('HUSH_BENCH_SIM_PROCESSES', 2);
const BIN_MS = 100;

const progress = (line: string) => process.stderr.write(`reconnect: ${line}\n`);
const now = () => performance.timeOrigin + performance.now();

/** Resolves with the time of the first successful TCP connect to host:port, trying every 5 ms. */
async function firstConnect(host: string, port: number, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const socket = net.connect({ host, port });
    const ok = await new Promise<boolean>((resolve) => socket.once('connect', () => resolve(true)).once('error', () => resolve(false)));
    const at = now();
    socket.destroy();
    if (ok) return at;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`);
}

export async function runReconnectBench(): Promise<{ markdown: string }> {
  const background = await watchBackgroundLoad();
  const dir = await makeScratchDir('reconnect');
  const port = await freePort();
  const target = `127.0.0.1:${port}`;
  const storeDir = join(dir.path, 'store');
  const storeOptions = { listen: target, args: ['--node-max-connections-per-address', '20000'], waitForCluster: true };
  let store: RunningStore | undefined;
  let fleet: SimFleet | undefined;
  const http = new Agent({ keepAlive: false });
  try {
    store = await startStoreProcess(storeDir, [], storeOptions);
    const admin = async (method: string, path: string, body?: unknown) => {
      const reply = await call(store!.socket, http, method, path, body === undefined ? undefined : Buffer.from(JSON.stringify(body)));
      if (reply.status >= 300) throw new Error(`${method} ${path}: ${reply.status} ${reply.body}`);
      return JSON.parse(reply.body) as Record<string, unknown>;
    };
    await admin('POST', '/v1/secrets', { name: 'held', data: randomBytes(32).toString('base64') });
    await admin('POST', '/v1/services', { name: 'entitled', grants: [{ source: 'held' }] });
    const { token } = (await admin('GET', '/v1/join-token')) as { token: string };

    fleet = await SimFleet.start(PROCESSES);
    const names = Array.from({ length: AGENTS }, (_, i) => `sim-${String(i).padStart(4, '0')}`);
    await fleet.join(target, token, names);
    await fleet.connect(target, names.map((name) => ({ name, service: 'entitled' })), { watch: ['held'] });
    progress(`${AGENTS} agents connected`);

    const killedAt = now();
    store.child.process.kill('SIGKILL');
    await once(store.child.process, 'exit');
    progress('store killed (-9); starting it again on the same data directory and port');
    const restartAt = now();
    const back = firstConnect('127.0.0.1', port);
    store = await startStoreProcess(storeDir, [], storeOptions);
    const backAt = await back;
    const deadline = Date.now() + 120_000;
    while ((await fleet.ready()) < AGENTS) {
      if (Date.now() > deadline) throw new Error(`only ${await fleet.ready()} of ${AGENTS} agents reconnected within 120 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const records = await fleet.collect();
    const reconnects = records.map((r) => {
      const at = r.ready.find((t) => t > killedAt);
      if (at === undefined) throw new Error(`${r.name} has no session after the restart`);
      return { at: at - backAt, attempts: r.attempts.filter((t) => t > killedAt).length, attemptsBeforeBack: r.attempts.filter((t) => t > killedAt && t < backAt).length };
    });
    const spread = spreadOf(reconnects.map((r) => r.at));
    const attempts = spreadOf(reconnects.map((r) => r.attempts));
    const downMs = backAt - killedAt;
    const load = await background();
    progress(`store back ${ms(downMs, 0)} ms after the kill; reconnects first ${ms(spread.min)} p50 ${ms(spread.p50)} p99 ${ms(spread.p99)} last ${ms(spread.max)} ms after`);

    // Reconnects per 100 ms after the store was back (an agent that got in before "back" as measured falls in the first slice), ten slices a row.
    const bins = new Array<number>(Math.floor(Math.max(0, spread.max) / BIN_MS) + 1).fill(0);
    for (const r of reconnects) bins[Math.max(0, Math.floor(r.at / BIN_MS))]!++;
    const peak = Math.max(...bins);
    const histogram: string[] = [];
    for (let row = 0; row * 10 < bins.length; row++) {
      const slice = bins.slice(row * 10, row * 10 + 10);
      histogram.push(`| ${row}–${row + 1} s | ${slice.join(' ')} | ${slice.reduce((a, b) => a + b, 0)} |`);
    }
    const busy = load === undefined ? 'unknown' : `${Math.round(load * 100)}%`;
    const markdown = [
      '## Reconnect spread after a store restart (`bench/reconnect.ts`)',
      '',
      `Measured ${new Date().toISOString()}.`,
      '',
      `${AGENTS} simulated agents in ${PROCESSES} processes (each joined with its own certificate and connection, running the agent's own session ` +
        'and reconnect backoff: exponential from 200 ms to 10 s, full jitter) hold sessions with a store; the store is killed with SIGKILL ' +
        'and started again on the same data directory and port. "Back" is the first TCP connect to the node port that succeeds (polled every 5 ms); ' +
        'a reconnect is the first snapshot an agent receives after the kill. ' +
        `Other work on the machine during this bench: ${busy} of all CPU time.`,
      '',
      `The store was back ${ms(downMs, 0)} ms after the kill (start-up ${ms(backAt - restartAt, 0)} ms). ` +
        `Reconnects after it was back: **first ${ms(spread.min, 0)} ms, p50 ${ms(spread.p50, 0)} ms, p99 ${ms(spread.p99, 0)} ms, last ${ms(spread.max, 0)} ms**; ` +
        `at most ${peak} of ${AGENTS} agents in one ${BIN_MS} ms slice. Session attempts per agent from the kill until it was back in: p50 ${attempts.p50}, max ${attempts.max}.`,
      '',
      `Reconnects per ${BIN_MS} ms slice after the store was back, ten slices a row:`,
      '',
      '| after the store was back | per 100 ms | in the second |',
      '|---|---|--:|',
      ...histogram,
    ].join('\n');
    return { markdown };
  } finally {
    http.destroy();
    await fleet?.stop();
    await store?.child.stop();
    await dir.remove();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.once('SIGINT', () => process.exit(130));
  const { markdown } = await runReconnectBench();
  process.stdout.write(`${markdown}\n`);
}
