/**
 * High availability: what running the store on etcd costs, and how fast
 * agents fail over.
 *
 * 1. Durable writes/s through a store replica on a 3-member etcd cluster
 *    (the second replica running, as deployed) against the embedded engine,
 *    in paired rounds, as bench/store-writes.ts pairs hush and etcd.
 * 2. Rotation propagation: a rotation's 201 to the moment the last of a few
 *    real agents acknowledged holding it (the store's `ackedAt`), on each
 *    backend. On etcd the rotation goes through one replica and the agents
 *    are spread over both, so most hear of it through the other replica's watch.
 * 3. Failover: kill -9 of the replica the agents are on; from the kill to
 *    each agent's "session with the store established" on the other replica
 *    (the agent's own log timestamp: its secrets applied and acked there). The
 *    killed replica is started again before the next kill.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startAgent, type RunningAgent } from './lib/agent-process.js';
import { runClients, type ClientsResult } from './lib/clients.js';
import { ensureEtcd, startEtcdCluster, type RunningEtcdCluster } from './lib/etcd.js';
import { fmtMs, fmtRate, fmtX, type LoadOptions } from './lib/load.js';
import { freePort } from './lib/proc.js';
import { call, startStoreProcess, type RunningStore } from './lib/store-process.js';
import { describeScratch, makeScratchDir } from './lib/tmp.js';
import { envInt } from './lib/env.js';

const CONCURRENCY = 64;
const VALUE_BYTES = 200;
const WRITE_COUNT = envInt('HUSH_BENCH_HA_COUNT', 5_000);
const WRITE_SECONDS = envInt('HUSH_BENCH_HA_SECONDS', 10);
const WRITE_ROUNDS = envInt('HUSH_BENCH_HA_ROUNDS', 3);
const WARMUP = 500;
const AGENTS = envInt('HUSH_BENCH_HA_AGENTS', 3);
const ROTATIONS = envInt('HUSH_BENCH_HA_ROTATIONS', 50);
const KILLS = envInt('HUSH_BENCH_FAILOVER_KILLS', 20);

const progress = (line: string) => process.stderr.write(`ha: ${line}\n`);

interface Replica {
  name: string;
  dir: string;
  port: number;
  store?: RunningStore;
}

/** p-th quantile (0..1) of some numbers, nearest rank. */
function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function spread(values: number[], fmt: (n: number) => string): { median: number; text: string } {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return { median, text: sorted.length > 1 ? `${fmt(median)} [${fmt(sorted[0]!)}–${fmt(sorted.at(-1)!)}]` : fmt(median) };
}

async function api<T>(socket: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await call(socket, undefined, method, path, body === undefined ? undefined : Buffer.from(JSON.stringify(body)));
  if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${res.body.slice(0, 300)}`);
  return (res.body ? JSON.parse(res.body) : undefined) as T;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(5);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function runHaBench(): Promise<{ markdown: string }> {
  await ensureEtcd(progress);
  const dir = await makeScratchDir('ha');
  let etcd: RunningEtcdCluster | undefined;
  let embedded: RunningStore | undefined;
  const replicas: Replica[] = [];
  const agents: RunningAgent[] = [];
  try {
    etcd = await startEtcdCluster(join(dir.path, 'etcd'), 3);
    const endpoints = etcd.endpoints.join(',');
    const embeddedPort = await freePort();
    embedded = await startStoreProcess(join(dir.path, 'embedded'), [], { listen: `127.0.0.1:${embeddedPort}`, waitForCluster: true });
    for (const name of ['a', 'b']) replicas.push({ name, dir: join(dir.path, `replica-${name}`), port: await freePort() });
    const startReplica = async (r: Replica) => {
      r.store = await startStoreProcess(r.dir, [], {
        listen: `127.0.0.1:${r.port}`,
        args: ['--backend', 'etcd', '--etcd-endpoints', endpoints, '--etcd-prefix', 'bench/', '--replica-id', r.name],
        waitForCluster: true,
      });
    };
    const [a, b] = replicas as [Replica, Replica];
    await startReplica(a);
    // Every replica must decrypt: the second takes the first one's key file.
    await mkdir(join(b.dir, 'data'), { recursive: true, mode: 0o700 });
    await copyFile(join(a.dir, 'data', 'master.key'), join(b.dir, 'data', 'master.key'));
    await startReplica(b);

    const writes = await writesRounds(embedded, a);
    const propagation = {
      embedded: await propagationRun('embedded', [embedded], () => [`127.0.0.1:${embeddedPort}`], join(dir.path, 'agents-embedded'), agents),
      etcd: await propagationRun(
        'etcd',
        [a.store!, b.store!],
        // Spread over both replicas: the first agent prefers A (where rotations are made), the others B.
        (i) => (i === 0 ? [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`] : [`127.0.0.1:${b.port}`, `127.0.0.1:${a.port}`]),
        join(dir.path, 'agents-etcd'),
        agents,
      ),
    };
    const etcdAgents = agents.filter((x) => x.name.startsWith('etcd-'));
    const failover = await failoverRuns(replicas, etcdAgents, startReplica);
    return { markdown: await report(writes, propagation, failover) };
  } finally {
    await Promise.all(agents.map((x) => x.child.stop()));
    await Promise.all([embedded?.child.stop(), ...replicas.map((r) => r.store?.child.stop())]);
    await etcd?.stop();
    await dir.remove();
  }

}

/** (1) Paired rounds: the embedded store, then replica A on etcd, driven alike. */
async function writesRounds(embedded: RunningStore, a: Replica): Promise<{ embedded: ClientsResult; etcd: ClientsResult }[]> {
  const load: LoadOptions = { concurrency: CONCURRENCY, count: WRITE_COUNT, maxSeconds: WRITE_SECONDS };
  const job = { valueBytes: VALUE_BYTES, warmup: WARMUP, load };
  const rounds: { embedded: ClientsResult; etcd: ClientsResult }[] = [];
  for (let round = 1; round <= WRITE_ROUNDS; round++) {
    const e = await runClients({ ...job, target: { kind: 'hush', socket: embedded.socket }, prefix: `w${round}e` }, 1, embedded.child.process.pid!);
    const x = await runClients({ ...job, target: { kind: 'hush', socket: a.store!.socket }, prefix: `w${round}x` }, 1, a.store!.child.process.pid!);
    rounds.push({ embedded: e, etcd: x });
    progress(`writes round ${round}/${WRITE_ROUNDS}: embedded ${fmtRate(e.perSecond)}/s, etcd ${fmtRate(x.perSecond)}/s`);
  }
  return rounds;
}

interface Propagation {
  /** Per rotation: 201 (as the client saw it) → the last agent's ack (the store's clock; 0 when the ack came first). */
  afterCreated: number[];
  /** Per rotation: request sent → the last agent's ack. */
  fromRequest: number[];
  agents: number;
}

interface PropagationReply {
  complete: boolean;
  nodes: { node: string; version?: number; ackedAt?: string }[];
}

/** (2) AGENTS agents with a container of a service granted one secret; ROTATIONS rotations through the first store, one at a time. */
async function propagationRun(
  label: string,
  stores: RunningStore[],
  storesFor: (i: number) => string[],
  dir: string,
  agents: RunningAgent[],
): Promise<Propagation> {
  const through = stores[0]!;
  const { token } = await api<{ token: string }>(through.socket, 'GET', '/v1/join-token');
  await api(through.socket, 'POST', '/v1/secrets', { name: 'rotated', data: Buffer.from('v1').toString('base64') });
  await api(through.socket, 'POST', '/v1/services', { name: 'svc', grants: [{ source: 'rotated' }] });
  const mine: RunningAgent[] = [];
  for (let i = 0; i < AGENTS; i++) {
    const agent = await startAgent(join(dir, `${i}`), `${label}-${i}`, storesFor(i), token);
    agents.push(agent);
    mine.push(agent);
    await agent.startContainer(`c${i}`, 'svc');
  }
  const result: Propagation = { afterCreated: [], fromRequest: [], agents: mine.length };
  for (let i = 0; i < ROTATIONS; i++) {
    const sentAt = Date.now();
    const { version } = await api<{ version: number }>(through.socket, 'POST', '/v1/secrets/rotated/rotate', { data: Buffer.from(`v${i + 2}`).toString('base64') });
    const createdAt = Date.now();
    // Each replica knows the acks of the sessions it serves: ask every store, keep each node's ack of this version.
    const acks = new Map<string, number>();
    await waitFor(`version ${version} acked by ${mine.length} agents (${label})`, async () => {
      for (const store of stores) {
        const reply = await api<PropagationReply>(store.socket, 'GET', `/v1/secrets/rotated/propagation?version=${version}`);
        for (const n of reply.nodes) if ((n.version ?? 0) >= version && n.ackedAt) acks.set(n.node, Date.parse(n.ackedAt));
      }
      return acks.size >= mine.length;
    });
    const last = Math.max(...acks.values());
    result.afterCreated.push(Math.max(0, last - createdAt));
    result.fromRequest.push(last - sentAt);
  }
  progress(`propagation (${label}): p50 ${fmtMs(quantile(result.afterCreated, 0.5))} ms, p99 ${fmtMs(quantile(result.afterCreated, 0.99))} ms after the 201`);
  return result;
}

interface Failover {
  /** kill → session established on the other replica, per agent per kill (ms). */
  samples: number[];
  kills: number;
  resumed: number;
  snapshots: number;
}

/** (3) KILLS times: kill -9 the replica the agents are on, time each agent's move, start the replica again. */
async function failoverRuns(replicas: Replica[], agents: RunningAgent[], startReplica: (r: Replica) => Promise<void>): Promise<Failover> {
  const result: Failover = { samples: [], kills: 0, resumed: 0, snapshots: 0 };
  type NodeJson = { name: string; status: { state: string; replica?: string } };
  const placement = async (via: Replica) => new Map((await api<NodeJson[]>(via.store!.socket, 'GET', '/v1/nodes')).map((n) => [n.name, n.status]));
  for (let kill = 1; kill <= KILLS; kill++) {
    // The victim: the replica serving most of the agents (all of them after the first kill).
    const seen = await placement(replicas[0]!);
    const count = (r: Replica) => agents.filter((x) => seen.get(x.name)?.replica === r.name).length;
    const victim = count(replicas[0]!) >= count(replicas[1]!) ? replicas[0]! : replicas[1]!;
    const survivor = replicas.find((r) => r !== victim)!;
    const moving = agents.filter((x) => seen.get(x.name)?.replica === victim.name);
    const logged = new Map(moving.map((x) => [x, x.lines.length]));
    const killedAt = Date.now();
    const killedAtPerf = performance.now();
    victim.store!.child.process.kill('SIGKILL');
    await new Promise<void>((resolve) => (victim.store!.child.process.exitCode !== null || victim.store!.child.process.signalCode !== null ? resolve() : victim.store!.child.process.once('exit', () => resolve())));
    for (const agent of moving) {
      let established: { time: number; start?: unknown } | undefined;
      await waitFor(`${agent.name} established on ${survivor.name} after kill ${kill}`, async () => {
        established = agent.lines.slice(logged.get(agent)).find((l) => l.msg === 'session with the store established' && l.time >= killedAt);
        return established !== undefined;
      });
      result.samples.push(established!.time - killedAt);
      if (established!.start === 'resumed') result.resumed++;
      else result.snapshots++;
    }
    // And the other replica says so too (node ls): the agents are ready there.
    await waitFor(`node ls on ${survivor.name} after kill ${kill}`, async () => {
      const after = await placement(survivor);
      return moving.every((x) => after.get(x.name)?.state === 'ready' && after.get(x.name)?.replica === survivor.name);
    });
    result.kills++;
    progress(`kill ${kill}/${KILLS} of ${victim.name}: ${moving.length} agents moved in ${moving.map((_, i) => fmtMs(result.samples.at(-moving.length + i)!)).join(', ')} ms (${fmtMs(performance.now() - killedAtPerf)} ms until node ls agreed)`);
    await startReplica(victim);
  }
  return result;
}

async function report(
  writes: { embedded: ClientsResult; etcd: ClientsResult }[],
  propagation: { embedded: Propagation; etcd: Propagation },
  failover: Failover,
): Promise<string> {
  const medianRun = (runs: ClientsResult[]) => [...runs].sort((x, y) => x.perSecond - y.perSecond)[Math.floor((runs.length - 1) / 2)]!;
  const writeRow = (what: string, runs: ClientsResult[]) => {
    const r = medianRun(runs);
    return `| ${what} | ${spread(runs.map((x) => x.perSecond), fmtRate).text} | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ${r.serverCores.toFixed(2)} |`;
  };
  const ratio = spread(writes.map((r) => r.etcd.perSecond / r.embedded.perSecond), fmtX);
  const propRow = (what: string, p: Propagation) =>
    `| ${what} | ${p.agents} | ${p.afterCreated.length} | ${fmtMs(quantile(p.afterCreated, 0.5))} | ${fmtMs(quantile(p.afterCreated, 0.99))} | ${fmtMs(quantile(p.fromRequest, 0.5))} | ${fmtMs(quantile(p.fromRequest, 0.99))} |`;
  return [
    '## High availability (`bench/ha.ts`)',
    '',
    `A store on a 3-member etcd cluster (all members on this machine and disk, default etcd settings) with two replicas, against the embedded engine, in the same run. Data under ${await describeScratch()}.`,
    '',
    `### Durable writes: etcd backend vs embedded engine`,
    '',
    `${CONCURRENCY} concurrent writers (one client process), \`POST /v1/secrets\` of ${VALUE_BYTES}-byte values over the admin socket, ${WRITE_COUNT.toLocaleString('en-US')} writes per run (capped at ${WRITE_SECONDS} s) after ${WARMUP} warm-up writes; ` +
      'a round runs the embedded store, then replica A (replica B runs beside it, watching). Acknowledged means durable: fdatasync by the embedded engine; committed by a majority of etcd members, each with its own fsync. Medians over rounds, range in brackets.',
    '',
    '| store | writes/s | p50 ms | p99 ms | store CPU (cores) |',
    '|---|--:|--:|--:|--:|',
    writeRow('embedded engine', writes.map((r) => r.embedded)),
    writeRow('etcd backend (replica A of 2)', writes.map((r) => r.etcd)),
    '',
    `etcd / embedded: ${ratio.text} (median of ${writes.length} paired rounds; no goal: this is what HA costs).`,
    '',
    '### Rotation propagation: 201 → every agent acked',
    '',
    `${propagation.etcd.agents} real agents, each with one container of a service granted the secret; ${ROTATIONS} rotations, one at a time. ` +
      'The time is from the moment the client read the 201 to the last agent\'s ack as the store recorded it (`ackedAt` of the propagation route; 0 when the acks landed before the client had read the 201), ' +
      'and from the moment the request was sent. On etcd the rotations go through replica A; one agent is connected to A and the others to B, which learns of each rotation from its etcd watch.',
    '',
    '| store | agents | rotations | 201 → acked p50 ms | p99 ms | request → acked p50 ms | p99 ms |',
    '|---|--:|--:|--:|--:|--:|--:|',
    propRow('embedded engine', propagation.embedded),
    propRow('etcd backend (2 replicas)', propagation.etcd),
    '',
    '### Agent failover: replica killed → agent ready on the other',
    '',
    `${failover.kills} times: \`kill -9\` of the replica the agents are connected to (all ${propagation.etcd.agents} after the first kill), then the time from the kill to each agent's log line "session with the store established" on the other replica ` +
      '(its secrets applied and acked there; the agent keeps serving what it holds meanwhile). It includes the agent\'s first reconnect delay (exponential backoff with full jitter, agent/backoff.ts). ' +
      'The killed replica is started again before the next kill.',
    '',
    '| kills | agent moves | p50 ms | p99 ms | max ms | resumed with a delta | with a snapshot |',
    '|--:|--:|--:|--:|--:|--:|--:|',
    `| ${failover.kills} | ${failover.samples.length} | ${fmtMs(quantile(failover.samples, 0.5))} | ${fmtMs(quantile(failover.samples, 0.99))} | ${fmtMs(Math.max(...failover.samples))} | ${failover.resumed} | ${failover.snapshots} |`,
  ].join('\n');
}
