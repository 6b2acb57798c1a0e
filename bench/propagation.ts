/**
 * Rotation propagation: from the rotate call's 201 until every agent holds
 * the new version, for N agents on one store on this machine (issue 12).
 *
 * - Simulated agents (bench/lib/sim-fleet.ts) for scale: each joined with the
 *   token through the real join flow, its own certificate and mutual-TLS
 *   connection, the agent's own session code. Per agent: when the delta with
 *   the new version arrived and when its ack left (agent side), and when the
 *   store recorded the ack (its propagation view, ackedAt, ms resolution).
 * - Bytes per rotation on the wire: half the agents run a service granted the
 *   rotated secret, half one that is not; every agent dials the store through
 *   its own counting TCP relay, so what each received is counted on its socket.
 * - A few real `hush agent` processes with a container mount each: when a
 *   separate reader process first reads the new value through FUSE.
 * - Store RSS with N sessions and SECRETS secrets in the store.
 *
 * Sizes: HUSH_BENCH_PROPAGATION_SIZES (default 10,100,1000; 5000 fits in
 * memory here and takes a few minutes more), HUSH_BENCH_PROPAGATION_ROTATIONS
 * rotations per size (default 5), HUSH_BENCH_PROPAGATION_SECRETS secrets in
 * the store (default 10000), HUSH_BENCH_SIM_PROCESSES (default 2),
 * HUSH_BENCH_FUSE_AGENTS (default 3).
 *
 *   npx tsx bench/propagation.ts
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { cleanStaleMounts } from '../src/tmpfs-mount/index.js';
import { memoryOf, mib, ms, spreadOf, type Spread } from './lib/latency.js';
import { watchBackgroundLoad } from './lib/machine.js';
import { cpuSeconds, freePort, startChild, waitReady, type Child } from './lib/proc.js';
import { SimFleet, type SessionRecord } from './lib/sim-fleet.js';
import { call, startStoreProcess, type RunningStore } from './lib/store-process.js';
import { REPO_ROOT, makeScratchDir } from './lib/tmp.js';
import { envInt } from './lib/env.js';

const envList = (name: string, fallback: number[]) => {
  const raw = process.env[name];
  const list = raw?.split(',').map((x) => Number.parseInt(x.trim(), 10)).filter((n) => Number.isSafeInteger(n) && n > 0);
  return list && list.length > 0 ? list.sort((a, b) => a - b) : fallback;
};
const SIZES = envList('HUSH_BENCH_PROPAGATION_SIZES', [10, 100, 1000]);
const ROTATIONS = envInt('HUSH_BENCH_PROPAGATION_ROTATIONS', 5, 0);
const SECRETS = envInt('HUSH_BENCH_PROPAGATION_SECRETS', 10_000, 0);
const PROCESSES = Math.max(1, envInt('HUSH_BENCH_SIM_PROCESSES', 2, 0));
const FUSE_AGENTS = envInt('HUSH_BENCH_FUSE_AGENTS', 3, 0);
/** Agents in the bytes run, half of them entitled. */
const BYTES_AGENTS = 100;
const VALUE_BYTES = 32;
const RSS_AT = 1000;
const GOAL_P99_MS = 250;
const GOAL_RSS_MIB = 250;
const SECRET = 'rotated';
/** Set to a directory to write a CPU profile of the store process (node --cpu-prof) for diagnosis. */
const STORE_CPU_PROF = process.env.HUSH_BENCH_CPU_PROF;

const progress = (line: string) => process.stderr.write(`propagation: ${line}\n`);
const verdict = (ok: boolean) => (ok ? '**met**' : '**not met**');
const now = () => performance.timeOrigin + performance.now();
const count = (n: number) => n.toLocaleString('en-US');

interface Propagation {
  version: number;
  complete: boolean;
  nodes: { node: string; name?: string; version?: number; ackedAt?: string }[];
}

class Admin {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 32 });
  constructor(private readonly socket: string) {}

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const reply = await call(this.socket, this.agent, method, path, body === undefined ? undefined : Buffer.from(JSON.stringify(body)));
    if (reply.status >= 300) throw new Error(`${method} ${path}: ${reply.status} ${reply.body}`);
    return (reply.body ? JSON.parse(reply.body) : undefined) as T;
  }

  /** Rotates to `value`; returns the new version and when the request left and its 201 came back. */
  async rotate(value: Buffer): Promise<{ version: number; sentAt: number; okAt: number }> {
    const sentAt = now();
    const { version } = await this.json<{ version: number }>('POST', `/v1/secrets/${SECRET}/rotate`, { data: value.toString('base64') });
    return { version, sentAt, okAt: now() };
  }

  propagation(version: number): Promise<Propagation> {
    return this.json<Propagation>('GET', `/v1/secrets/${SECRET}/propagation?version=${version}`);
  }

  close(): void {
    this.agent.destroy();
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000, intervalMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * The store's view of `version` restricted to `names`: nodes from an earlier
 * stage keep their containers registered (and so stay entitled) after their
 * sessions closed, and would keep the whole view from ever being complete.
 */
async function viewOf(admin: Admin, version: number, names: ReadonlySet<string>): Promise<{ held: boolean; nodes: Propagation['nodes'] }> {
  const nodes = (await admin.propagation(version)).nodes.filter((n) => n.name !== undefined && names.has(n.name));
  return { held: nodes.length === names.size && nodes.every((n) => n.version !== undefined && n.version >= version), nodes };
}

interface SizeResult {
  n: number;
  rotations: number;
  received: Spread;
  acked: Spread;
  /** The same acks counted from when the rotate request was sent. */
  ackedFromSend: Spread;
  storeAcked: Spread;
  /** Per rotation: the 201 until the store's view said complete (as polled). */
  complete: Spread;
  rotateMs: Spread;
  /** CPU time per rotation (ms) of the store, and of all simulated-agent processes together, over the rotation loop. */
  storeCpuMs: number;
  agentsCpuMs: number;
  storeRss?: { rss: number; peak: number };
}

export async function runPropagationBench(): Promise<{ markdown: string }> {
  const background = await watchBackgroundLoad();
  const dir = await makeScratchDir('propagation');
  const port = await freePort();
  const target = `127.0.0.1:${port}`;
  let store: RunningStore | undefined;
  let fleet: SimFleet | undefined;
  let admin: Admin | undefined;
  const realAgents: Child[] = [];
  try {
    // One address for every simulated agent: the per-address limit (64 by default, for nodes behind one NAT) is raised for it.
    const profile = STORE_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${STORE_CPU_PROF}`] : [];
    store = await startStoreProcess(join(dir.path, 'store'), profile, { listen: target, args: ['--node-max-connections-per-address', '20000'], waitForCluster: true });
    admin = new Admin(store.socket);
    const storePid = store.child.process.pid!;
    await admin.json('POST', '/v1/secrets', { name: SECRET, data: randomBytes(VALUE_BYTES).toString('base64') });
    await admin.json('POST', '/v1/secrets', { name: 'unrelated_secret', data: randomBytes(VALUE_BYTES).toString('base64') });
    await admin.json('POST', '/v1/services', { name: 'entitled', grants: [{ source: SECRET, target: 'value' }] });
    await admin.json('POST', '/v1/services', { name: 'unrelated', grants: [{ source: 'unrelated_secret' }] });
    const fillMs = await fillSecrets(admin, SECRETS);
    progress(`${count(SECRETS)} secrets created in ${(fillMs / 1000).toFixed(1)} s`);
    const emptyRss = await memoryOf(storePid);
    const { token } = await admin.json<{ token: string }>('GET', '/v1/join-token');

    const maxN = Math.max(...SIZES, BYTES_AGENTS);
    const names = Array.from({ length: maxN }, (_, i) => `sim-${String(i).padStart(5, '0')}`);
    fleet = await SimFleet.start(PROCESSES);
    const joinStart = now();
    await fleet.join(target, token, names);
    const joinMs = now() - joinStart;
    progress(`${count(maxN)} agents joined in ${(joinMs / 1000).toFixed(1)} s over ${PROCESSES} processes`);
    const joinedRss = await memoryOf(storePid);

    const sizes: SizeResult[] = [];
    for (const n of SIZES) {
      sizes.push(await measureSize(fleet, admin, target, names.slice(0, n), storePid));
      const s = sizes.at(-1)!;
      progress(`N=${n}: ack p50 ${ms(s.acked.p50)} p99 ${ms(s.acked.p99)} max ${ms(s.acked.max)} ms; store view p99 ${ms(s.storeAcked.p99)} ms${s.storeRss ? `; store RSS ${mib(s.storeRss.rss)} MiB` : ''}`);
    }
    const bytes = await measureBytes(fleet, admin, target, names.slice(0, BYTES_AGENTS));
    progress(`bytes: ${Math.round(bytes.perEntitledNode)} per entitled agent per rotation, ${bytes.unentitledMessages} messages to the others`);
    const workerRss = await fleet.rss();
    await fleet.stop();
    fleet = undefined;

    const fuse = FUSE_AGENTS > 0 ? await measureFuse(admin, dir.path, target, token, realAgents) : undefined;
    if (fuse) progress(`FUSE: readable p50 ${ms(fuse.readable.p50)} max ${ms(fuse.readable.max)} ms`);
    const load = await background();
    return { markdown: report({ sizes, bytes, fuse, joinMs, joined: maxN, fillMs, emptyRss, joinedRss, workerRss, load }) };
  } finally {
    admin?.close();
    await fleet?.stop();
    await Promise.all(realAgents.map((a) => a.stop()));
    await cleanStaleMounts(join(dir.path, 'fuse-mounts')).catch(() => {});
    await store?.child.stop();
    await dir.remove();
  }
}

/** Creates `n` secrets of VALUE_BYTES (32 at a time), so the store holds what a large cluster's would. */
async function fillSecrets(admin: Admin, n: number): Promise<number> {
  const start = now();
  let next = 0;
  const loop = async () => {
    while (next < n) {
      const i = next++;
      await admin.json('POST', '/v1/secrets', { name: `filler_${String(i).padStart(5, '0')}`, data: randomBytes(VALUE_BYTES).toString('base64') });
    }
  };
  await Promise.all(Array.from({ length: 32 }, loop));
  return now() - start;
}

/** The current version of the rotated secret. */
async function currentVersion(admin: Admin): Promise<number> {
  return (await admin.json<{ version: number }>('GET', `/v1/secrets/${SECRET}`)).version;
}

/** Rotates once and waits until the `entitled` agents acked (agent side) and the store's view says they hold it; returns the rotation's times. */
async function rotateAndWait(fleet: SimFleet, admin: Admin, entitled: ReadonlySet<string>): Promise<{ version: number; sentAt: number; okAt: number; completeAt: number; nodes: Propagation['nodes'] }> {
  const r = await admin.rotate(randomBytes(VALUE_BYTES));
  await waitFor(`${entitled.size} acks of version ${r.version}`, async () => (await fleet.acked(SECRET, r.version)) >= entitled.size);
  let nodes: Propagation['nodes'] = [];
  await waitFor(`the store's view of version ${r.version} to be complete`, async () => {
    const view = await viewOf(admin, r.version, entitled);
    nodes = view.nodes;
    return view.held;
  });
  return { ...r, completeAt: now(), nodes };
}

/** Waits until the store's view says every one of `names` holds the current version (their snapshots are in). */
async function waitHeld(admin: Admin, names: ReadonlySet<string>): Promise<void> {
  const version = await currentVersion(admin);
  await waitFor(`${names.size} agents to hold version ${version}`, async () => (await viewOf(admin, version, names)).held);
}

async function measureSize(fleet: SimFleet, admin: Admin, target: string, names: string[], storePid: number): Promise<SizeResult> {
  const n = names.length;
  const all = new Set(names);
  await fleet.connect(target, names.map((name) => ({ name, service: 'entitled' })), { watch: [SECRET] });
  await waitHeld(admin, all);
  const received: number[] = [];
  const acked: number[] = [];
  const ackedFromSend: number[] = [];
  const storeAcked: number[] = [];
  const complete: number[] = [];
  const rotateMs: number[] = [];
  const agentsCpu = () => fleet.pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const cpu0 = { store: cpuSeconds(storePid), agents: agentsCpu() };
  for (let i = 0; i < ROTATIONS; i++) {
    const r = await rotateAndWait(fleet, admin, all);
    const records = await fleet.collect();
    for (const rec of records) {
      const got = rec.got[`${SECRET}@${r.version}`];
      if (!got?.ackedAt) throw new Error(`N=${n}: ${rec.name} did not ack version ${r.version}`);
      received.push(got.receivedAt - r.okAt);
      acked.push(got.ackedAt - r.okAt);
      ackedFromSend.push(got.ackedAt - r.sentAt);
    }
    for (const node of r.nodes) storeAcked.push(Date.parse(node.ackedAt!) - r.okAt);
    complete.push(r.completeAt - r.okAt);
    rotateMs.push(r.okAt - r.sentAt);
  }
  const storeCpuMs = ((cpuSeconds(storePid) - cpu0.store) * 1000) / ROTATIONS;
  const agentsCpuMs = ((agentsCpu() - cpu0.agents) * 1000) / ROTATIONS;
  const storeRss = n >= RSS_AT ? await memoryOf(storePid) : undefined;
  await fleet.close();
  return { n, rotations: ROTATIONS, storeCpuMs, agentsCpuMs, received: spreadOf(received), acked: spreadOf(acked), ackedFromSend: spreadOf(ackedFromSend), storeAcked: spreadOf(storeAcked), complete: spreadOf(complete), rotateMs: spreadOf(rotateMs), storeRss };
}

interface BytesResult {
  agents: number;
  entitled: number;
  rotations: number;
  perEntitledNode: number;
  perRotation: number;
  minEntitled: number;
  maxEntitled: number;
  unentitledBytes: number;
  unentitledMessages: number;
  ackBytesPerNode: number;
}

/** Half the agents entitled, each behind its own counting relay: bytes each received per rotation. */
async function measureBytes(fleet: SimFleet, admin: Admin, target: string, names: string[]): Promise<BytesResult> {
  const isEntitled = (i: number) => i % 2 === 0;
  const entitledNames = new Set(names.filter((_, i) => isEntitled(i)));
  const entitled = entitledNames.size;
  await fleet.connect(target, names.map((name, i) => ({ name, service: isEntitled(i) ? 'entitled' : 'unrelated' })), { watch: [SECRET], countBytes: true });
  await waitHeld(admin, entitledNames);
  const perNode: number[] = [];
  const ackBytes: number[] = [];
  let unentitledBytes = 0;
  let unentitledMessages = 0;
  for (let i = 0; i < ROTATIONS; i++) {
    await fleet.mark();
    await rotateAndWait(fleet, admin, entitledNames);
    const records: SessionRecord[] = await fleet.collect();
    for (const rec of records) {
      if (rec.service === 'entitled') {
        perNode.push(rec.bytesToAgentSinceMark!);
        ackBytes.push(rec.bytesToStoreSinceMark!);
      } else {
        unentitledBytes += rec.bytesToAgentSinceMark!;
        unentitledMessages += rec.messagesSinceMark;
        if (Object.keys(rec.got).length > 0) throw new Error(`${rec.name} is not entitled but received ${Object.keys(rec.got).join(', ')}`);
      }
    }
  }
  await fleet.close();
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    agents: names.length,
    entitled,
    rotations: ROTATIONS,
    perEntitledNode: mean(perNode),
    perRotation: mean(perNode) * entitled,
    minEntitled: Math.min(...perNode),
    maxEntitled: Math.max(...perNode),
    unentitledBytes,
    unentitledMessages,
    ackBytesPerNode: mean(ackBytes),
  };
}

interface FuseResult {
  agents: number;
  rotations: number;
  readable: Spread;
  storeAcked: Spread;
}

/** Real `hush agent` processes, one container each; a reader process per container times the first read of each new value. */
async function measureFuse(admin: Admin, dir: string, target: string, token: string, started: Child[]): Promise<FuseResult> {
  const cli = join(REPO_ROOT, 'dist', 'cli', 'main.js');
  const files: string[] = [];
  for (let i = 0; i < FUSE_AGENTS; i++) {
    const socket = join(dir, `fuse-agent-${i}.sock`);
    const mounts = join(dir, 'fuse-mounts', String(i));
    const agent = startChild(process.execPath, [cli, 'agent', '--store', target, '--token', token, '--name', `fuse-${i}`, '--socket', socket, '--mounts', mounts, '--docker-plugin', 'off'], {
      env: { ...process.env, HUSH_LOG_LEVEL: 'warn' },
    });
    started.push(agent);
    await waitReady(agent, `hush agent fuse-${i}`, async () => {
      const status = await call(socket, undefined, 'GET', '/v1/status');
      return status.status === 200 && (JSON.parse(status.body) as { session?: { state?: string } }).session?.state === 'ready';
    }, 30_000);
    const container = await call(socket, undefined, 'POST', '/v1/containers', Buffer.from(JSON.stringify({ id: `fuse-c${i}`, service: 'entitled' })));
    if (container.status !== 201) throw new Error(`container on fuse-${i}: ${container.status} ${container.body}`);
    files.push(join(mounts, `fuse-c${i}`, 'value'));
  }
  const agentNames = new Set(Array.from({ length: FUSE_AGENTS }, (_, i) => `fuse-${i}`));
  await waitHeld(admin, agentNames);
  const reader = join(REPO_ROOT, 'bench', 'lib', 'fuse-poll-reader.ts');
  const readable: number[] = [];
  const storeAcked: number[] = [];
  for (let r = 0; r < ROTATIONS; r++) {
    const readers = files.map((file) => startChild(process.execPath, ['--import', 'tsx', reader, file], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] }));
    // 'close', not 'exit': the reader's last line may still be in its stdout pipe when it exits.
    const closed = readers.map((c) => once(c.process, 'close'));
    try {
      await Promise.all(readers.map((c, i) => waitReady(c, `reader of ${files[i]}`, async () => c.output().includes('ready\n'), 30_000)));
      const value = randomBytes(VALUE_BYTES);
      for (const c of readers) c.process.stdin!.write(`${value.toString('base64')}\n`);
      const rotation = await admin.rotate(value);
      for (const [i, c] of readers.entries()) readable.push((await seenAt(c, closed[i]!, files[i]!)) - rotation.okAt);
      let nodes: Propagation['nodes'] = [];
      await waitFor(`the store's view of version ${rotation.version}`, async () => {
        const view = await viewOf(admin, rotation.version, agentNames);
        nodes = view.nodes;
        return view.held;
      });
      for (const node of nodes) storeAcked.push(Date.parse(node.ackedAt!) - rotation.okAt);
    } finally {
      await Promise.all(readers.map((c) => c.stop()));
    }
  }
  return { agents: FUSE_AGENTS, rotations: ROTATIONS, readable: spreadOf(readable), storeAcked: spreadOf(storeAcked) };
}

/** When the reader first read the expected value: it says so and exits 0 (or exits 1 after its own timeout). */
async function seenAt(reader: Child, closed: Promise<unknown>, file: string): Promise<number> {
  const p = reader.process;
  await closed;
  const seen = /seen ([\d.]+)\n/.exec(reader.output());
  if (p.exitCode !== 0 || !seen) throw new Error(`reader of ${file} failed (${p.exitCode ?? p.signalCode}):\n${reader.output()}`);
  return Number(seen[1]);
}

function report(r: {
  sizes: SizeResult[];
  bytes: BytesResult;
  fuse?: FuseResult;
  joinMs: number;
  joined: number;
  fillMs: number;
  emptyRss: { rss: number; peak: number };
  joinedRss: { rss: number; peak: number };
  workerRss: number[];
  load: number | undefined;
}): string {
  const row = (s: Spread) => `${ms(s.p50)} / ${ms(s.p99)} / ${ms(s.max)}`;
  const atGoal = r.sizes.find((s) => s.n === RSS_AT) ?? r.sizes.filter((s) => s.n >= RSS_AT)[0];
  const busy = r.load === undefined ? 'unknown' : `${Math.round(r.load * 100)}%`;
  const lines = [
    '## Rotation propagation (`bench/propagation.ts`)',
    '',
    `Measured ${new Date().toISOString()}.`,
    '',
    `One store process on this machine; ${count(SECRETS)} other secrets in it (${VALUE_BYTES}-byte values, created in ${(r.fillMs / 1000).toFixed(1)} s). ` +
      `Simulated agents in ${PROCESSES} processes: each joined through the real join flow (token, CA check, Join RPC, its own RSA-2048 node certificate; ` +
      `${count(r.joined)} joins took ${(r.joinMs / 1000).toFixed(1)} s), holds its own mutual-TLS gRPC connection, and runs the agent's own session code ` +
      '(src/agent StoreSession and SecretCache: Hello, snapshot, deltas, acks, heartbeats, backoff). ' +
      `${ROTATIONS} rotations per size, each of a ${VALUE_BYTES}-byte value, one at a time; every agent runs a container of a service granted the secret. ` +
      'Times are from the moment the rotate call\'s 201 reached the client to: the delta with the new version arriving at the agent ("received"), ' +
      'the agent\'s ack leaving ("acked", agent side), the store recording the ack ("store saw ack", ackedAt in the propagation view, whole ms), ' +
      'and the propagation view, polled every few ms, answering complete ("complete"). The store sends the delta as soon as the new version is durable, ' +
      'before the HTTP answer is written, so small values can be negative; the "from the request" column counts from the moment the request was sent instead. ' +
      'The CPU column is the CPU time the store process, and the simulated agents\' processes together, used per rotation (from /proc, 10 ms ticks, the bench\'s own polling included): ' +
      'all of it competes for the same 2 cores, with other work on the machine. ' +
      `Other work on the machine during this bench: ${busy} of all CPU time.`,
    '',
    '| agents | samples | received p50 / p99 / max ms | acked p50 / p99 / max ms | store saw ack p50 / p99 / max ms | complete p50 / max ms | rotate call ms (p50) | acked, from the request p50 / p99 / max ms | CPU ms per rotation: store / simulated agents |',
    '|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...r.sizes.map(
      (s) => `| ${count(s.n)} | ${count(s.acked.n)} | ${row(s.received)} | ${row(s.acked)} | ${row(s.storeAcked)} | ${ms(s.complete.p50)} / ${ms(s.complete.max)} | ${ms(s.rotateMs.p50)} | ${row(s.ackedFromSend)} | ${ms(s.storeCpuMs, 0)} / ${ms(s.agentsCpuMs, 0)} |`,
    ),
    '',
  ];
  if (atGoal) {
    const p99 = Math.max(atGoal.acked.p99, atGoal.storeAcked.p99);
    lines.push(`**p99 at ${count(atGoal.n)} agents: ${ms(p99)} ms** (the later of the agent-side and store-side p99; goal < ${GOAL_P99_MS} ms): ${verdict(p99 < GOAL_P99_MS)}.  `);
    const rss = atGoal.storeRss!;
    lines.push(
      `**Store RSS with ${count(atGoal.n)} sessions and ${count(SECRETS + 2)} secrets: ${mib(rss.rss)} MiB** (peak ${mib(rss.peak)} MiB; with the secrets and before any join ${mib(r.emptyRss.rss)} MiB, after the ${count(r.joined)} joins and before any session ${mib(r.joinedRss.rss)} MiB; goal < ${GOAL_RSS_MIB} MiB): ${verdict(rss.rss < GOAL_RSS_MIB * 2 ** 20)}.`,
    );
  } else lines.push(`No size of ${count(RSS_AT)} agents or more was run (HUSH_BENCH_PROPAGATION_SIZES): no verdict on the goals.`);
  for (const s of r.sizes.filter((x) => x.storeRss && x !== atGoal)) lines.push('', `Store RSS with ${count(s.n)} sessions: ${mib(s.storeRss!.rss)} MiB (peak ${mib(s.storeRss!.peak)} MiB).`);
  const b = r.bytes;
  lines.push(
    '',
    '### Bytes on the wire per rotation',
    '',
    `${b.agents} agents, ${b.entitled} of them running a service granted the secret and ${b.agents - b.entitled} one that is not; ${b.rotations} rotations. ` +
      'Each agent dials the store through its own TCP relay that counts the bytes it forwards, so a figure is what crossed that agent\'s socket ' +
      '(TLS records, HTTP/2 frames, gRPC framing, protobuf), from just before the rotate call until the store\'s view was complete.',
    '',
    '| | bytes |',
    '|---|--:|',
    `| to each entitled agent, per rotation (mean; min–max) | ${Math.round(b.perEntitledNode)} (${b.minEntitled}–${b.maxEntitled}) |`,
    `| to all ${b.entitled} entitled agents, per rotation | ${count(Math.round(b.perRotation))} |`,
    `| from each entitled agent (its ack), per rotation | ${Math.round(b.ackBytesPerNode)} |`,
    `| to the ${b.agents - b.entitled} agents not entitled, all rotations together | ${count(b.unentitledBytes)} (${b.unentitledMessages} node-protocol messages) |`,
    '',
    `Only entitled agents receive anything: ${verdict(b.unentitledMessages === 0 && b.unentitledBytes === 0)}` +
      (b.unentitledBytes > 0 && b.unentitledMessages === 0 ? ' for messages (the bytes to the others are HTTP/2 keepalive ping answers, no message).' : '.'),
  );
  if (r.fuse) {
    const f = r.fuse;
    lines.push(
      '',
      '### Readable through FUSE (real agents)',
      '',
      `${f.agents} real \`hush agent\` processes, one container mount each (kernel FUSE), ${f.rotations} rotations. ` +
        'A reader process per container (never the agent) knows the coming value and reads the file (open, read, close) every 1 ms until it holds it; ' +
        'the time is from the 201 to that read.',
      '',
      '| | p50 / p99 / max ms |',
      '|---|--:|',
      `| readable in the container (${f.readable.n} samples) | ${row(f.readable)} |`,
      `| store saw the agent's ack | ${row(f.storeAcked)} |`,
    );
  }
  lines.push('', `Simulated-agent processes' RSS at the end: ${r.workerRss.map((x) => `${mib(x)} MiB`).join(', ')}.`);
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.once('SIGINT', () => process.exit(130));
  const { markdown } = await runPropagationBench();
  process.stdout.write(`${markdown}\n`);
}
