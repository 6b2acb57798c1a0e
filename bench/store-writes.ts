/**
 * Durable writes: how many secrets per second hush acknowledges as durable,
 * against etcd on the same disk (goal: ≥ 1.5×), and how close the embedded
 * engine gets to a bare group-commit loop in the same process (goal: ≥ 50%).
 *
 * fsync latency and spare CPU on shared VMs change from second to second, so
 * each comparison is paired: hush and its baseline run back to back in every
 * round, the goal is judged on the median of the per-round ratios, and the
 * range across rounds is shown.
 */
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runClients, type ClientsResult } from './lib/clients.js';
import { ensureEtcd, startEtcd, type RunningEtcd } from './lib/etcd.js';
import { measureOpCosts, probeRealRecord, runCreate, runEngine, runRaw, type InProcessResult, type OpCosts, type RealRecord } from './lib/in-process.js';
import { fmtMs, fmtPct, fmtRate, fmtX, type LoadOptions } from './lib/load.js';
import { startStoreProcess, type RunningStore } from './lib/store-process.js';
import { describeScratch, makeScratchDir } from './lib/tmp.js';
import { envInt } from './lib/env.js';

const CONCURRENCY = 64;
const VALUE_BYTES = 200;
const COUNT = envInt('HUSH_BENCH_COUNT', 20_000);
const MAX_SECONDS = envInt('HUSH_BENCH_SECONDS', 15);
const API_ROUNDS = envInt('HUSH_BENCH_ROUNDS', 3);
const ENGINE_ROUNDS = envInt('HUSH_BENCH_ENGINE_ROUNDS', 5);
/**
 * Client processes per server. One drives hush with CPU to spare; the etcd3
 * client costs ~0.2 ms of CPU per put, so etcd gets two (see the client CPU column).
 */
const CLIENTS = { hush: envInt('HUSH_BENCH_HUSH_CLIENTS', 1), etcd: envInt('HUSH_BENCH_ETCD_CLIENTS', 2) };
/** Set to a directory to write a CPU profile of the store process (node --cpu-prof) for diagnosis. */
const STORE_CPU_PROF = process.env.HUSH_BENCH_CPU_PROF;
const WARMUP = 1_000;
const API_GOAL = 1.5;
const ENGINE_GOAL = 0.5;

const load: LoadOptions = { concurrency: CONCURRENCY, count: COUNT, maxSeconds: MAX_SECONDS };
const progress = (line: string) => process.stderr.write(`store-writes: ${line}\n`);
const verdict = (ok: boolean) => (ok ? '**met**' : '**not met**');

/** Median and range of a few numbers, formatted. */
function spread(values: number[], fmt: (n: number) => string): { median: number; text: string } {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  return { median, text: sorted.length > 1 ? `${fmt(median)} [${fmt(sorted[0])}–${fmt(sorted.at(-1)!)}]` : fmt(median) };
}

/** The round whose rate is the median, so one row's figures come from one run. */
const medianRun = <T extends { perSecond: number }>(runs: T[]): T => [...runs].sort((a, b) => a.perSecond - b.perSecond)[Math.floor((runs.length - 1) / 2)];

export async function runStoreWritesBench(): Promise<{ markdown: string }> {
  const api = await apiVersusEtcd();
  const engine = await engineVersusRaw();
  const markdown = [
    '## Durable writes',
    '',
    `${CONCURRENCY} concurrent writers, ${VALUE_BYTES}-byte values, ${COUNT.toLocaleString('en-US')} writes per run (capped at ${MAX_SECONDS} s) after ${WARMUP.toLocaleString('en-US')} warm-up writes. ` +
      `A write counts once it is acknowledged, and it is acknowledged only once it is on disk (fdatasync). Data directories under ${await describeScratch()}. ` +
      'Figures are medians over rounds, with the range across rounds in brackets.',
    '',
    api,
    '',
    engine,
  ].join('\n');
  return { markdown };
}

/** (a) + (b): a real store process behind its admin socket and a local etcd, driven alike, alternately. */
async function apiVersusEtcd(): Promise<string> {
  await ensureEtcd(progress);
  const etcdVersion = await promisify(execFile)('etcd', ['--version']).then((r) => r.stdout.split('\n')[0].replace('etcd Version: ', ''), () => '?');
  const dir = await makeScratchDir('api');
  let store: RunningStore | undefined;
  let etcd: RunningEtcd | undefined;
  const rounds: { hush: ClientsResult; etcd: ClientsResult }[] = [];
  try {
    store = await startStoreProcess(join(dir.path, 'hush'), STORE_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${STORE_CPU_PROF}`] : []);
    etcd = await startEtcd(join(dir.path, 'etcd'));
    const job = { valueBytes: VALUE_BYTES, warmup: WARMUP, load };
    for (let round = 1; round <= API_ROUNDS; round++) {
      const hush = await runClients({ ...job, target: { kind: 'hush', socket: store.socket }, prefix: `r${round}` }, CLIENTS.hush, store.child.process.pid!);
      const base = await runClients({ ...job, target: { kind: 'etcd', endpoint: etcd.endpoint }, prefix: `/bench/r${round}` }, CLIENTS.etcd, etcd.child.process.pid!);
      rounds.push({ hush, etcd: base });
      progress(`round ${round}/${API_ROUNDS}: hush ${fmtRate(hush.perSecond)} creates/s, etcd ${fmtRate(base.perSecond)} puts/s`);
    }
  } finally {
    await Promise.all([store?.child.stop(), etcd?.child.stop()]);
    await dir.remove();
  }
  const ratio = spread(rounds.map((r) => r.hush.perSecond / r.etcd.perSecond), fmtX);
  const row = (server: string, request: string, runs: ClientsResult[]) => {
    const r = medianRun(runs);
    const clients = `${r.clients} client process${r.clients > 1 ? 'es' : ''}`;
    return (
      `| ${server} | ${request}, ${clients} | ${spread(runs.map((x) => x.perSecond), fmtRate).text} | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ` +
      `${r.serverCores.toFixed(2)} | ${fmtRate((r.serverCores / r.perSecond) * 1e6)} | ${r.clientCores.toFixed(2)} |`
    );
  };
  return [
    '### hush store (admin API) vs etcd',
    '',
    'Both servers run as separate processes on the same disk at the same time, each driven by its own client processes; a round runs hush, then etcd. ' +
      `CPU is in cores used during the measured part (this machine has ${availableParallelism()}); "µs CPU/write" is the server's CPU time per acknowledged write.`,
    '',
    '| server | request | writes/s | p50 ms | p99 ms | server CPU | µs CPU/write | client CPU |',
    '|---|---|--:|--:|--:|--:|--:|--:|',
    row('hush store', '`POST /v1/secrets` (node:http fast path, unix socket, keep-alive)', rounds.map((r) => r.hush)),
    row(`etcd ${etcdVersion}`, '`put` via the `etcd3` client (gRPC)', rounds.map((r) => r.etcd)),
    '',
    `**hush / etcd: ${ratio.text}** (median of ${rounds.length} paired rounds; goal ≥ ${API_GOAL}×): ${verdict(ratio.median >= API_GOAL)}.`,
  ].join('\n');
}

/** (c): the engine, and the engine + crypto, in this process, each against a raw loop writing records of its size. */
async function engineVersusRaw(): Promise<string> {
  const dir = await makeScratchDir('engine');
  const rounds: { raw: InProcessResult; engine: InProcessResult; rawCreate: InProcessResult; create: InProcessResult }[] = [];
  let costs: OpCosts;
  let record: RealRecord;
  try {
    record = await probeRealRecord(join(dir.path, 'probe'), VALUE_BYTES, 'bench-m00000');
    costs = await measureOpCosts(join(dir.path, 'costs'), record.json, VALUE_BYTES);
    progress(`a ${VALUE_BYTES}-byte secret is a ${record.json.length}-byte record; a create logs ${record.createCommitBytes} bytes, a single put ${record.putCommitBytes}`);
    for (let round = 1; round <= ENGINE_ROUNDS; round++) {
      const sub = (name: string) => join(dir.path, `${name}-${round}`);
      const raw = await runRaw(await mkdirp(sub('raw')), record.putCommitBytes, load, WARMUP);
      const engine = await runEngine(sub('engine'), record.json, load, WARMUP);
      const rawCreate = await runRaw(await mkdirp(sub('raw-create')), record.createCommitBytes, load, WARMUP);
      const create = await runCreate(sub('create'), VALUE_BYTES, load, WARMUP);
      rounds.push({ raw, engine, rawCreate, create });
      progress(
        `round ${round}/${ENGINE_ROUNDS}: raw ${fmtRate(raw.perSecond)}, engine ${fmtRate(engine.perSecond)}, ` +
          `raw at create size ${fmtRate(rawCreate.perSecond)}, secrets.create ${fmtRate(create.perSecond)} /s`,
      );
    }
  } finally {
    await dir.remove();
  }
  const engineRatio = spread(rounds.map((r) => r.engine.perSecond / r.raw.perSecond), fmtPct);
  const createRatio = spread(rounds.map((r) => r.create.perSecond / r.rawCreate.perSecond), fmtPct);
  const opt = (n: number | undefined, digits: number) => (n === undefined ? '–' : n.toFixed(digits));
  const row = (path: string, runs: InProcessResult[]) => {
    const r = medianRun(runs);
    return (
      `| ${path} | ${Math.round(r.bytesPerCommit)} | ${spread(runs.map((x) => x.perSecond), fmtRate).text} | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ` +
      `${opt(r.meanBatch, 1)} | ${opt(r.flushMs, 2)} | ${opt(r.syncMs, 2)} | ${r.elu.toFixed(2)} |`
    );
  };
  return [
    '### Storage engine vs a raw group-commit loop (in process, no HTTP)',
    '',
    'The raw loop is the floor for durable appends from Node: writers queue a record; one flusher does one `writev` + one `fdatasync` per batch of whatever is queued. ' +
      'Each hush row is paired with a raw run writing records of the size that row logs per commit (measured from the log files). ' +
      '"flush ms" is the wall time of one batch\'s write + fdatasync as the flusher sees it, including any wait for a busy event loop; ' +
      '"ELU" is event-loop utilization (near 1: the main thread, not the disk, is the limit).',
    '',
    '| path | bytes/commit | commits/s | p50 ms | p99 ms | mean batch | flush ms | fdatasync ms | ELU |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|',
    row('raw `writev` + `fdatasync` loop', rounds.map((r) => r.raw)),
    row('`EmbeddedBackend.commit`, one put of a real secret record', rounds.map((r) => r.engine)),
    row('raw loop, records the size of a create', rounds.map((r) => r.rawCreate)),
    row('`openStore()` + `secrets.create` (engine + envelope crypto)', rounds.map((r) => r.create)),
    '',
    `**engine / raw: ${engineRatio.text}** (median of ${rounds.length} paired rounds; goal ≥ ${fmtPct(ENGINE_GOAL)}): ${verdict(engineRatio.median >= ENGINE_GOAL)}.  `,
    `secrets.create / raw at its size: ${createRatio.text} (no goal of its own; it is the ceiling for the admin API).`,
    '',
    `CPU per step, one thread: \`Envelope.seal\` of a ${VALUE_BYTES}-byte value ${costs.sealUs.toFixed(1)} µs; ` +
      `the synchronous part of \`EmbeddedBackend.commit\` (checks, JSON, framing, chain hash) for a ${record.json.length}-byte record ${costs.commitUs.toFixed(1)} µs.`,
  ].join('\n');
}

async function mkdirp(path: string): Promise<string> {
  await mkdir(path, { recursive: true });
  return path;
}
