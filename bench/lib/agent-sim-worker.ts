/**
 * One process of simulated agents (forked by sim-fleet.ts). Each simulated
 * agent is as real as an agent without containers can be: it joins through
 * the real join flow (join token → CA check → Join RPC → its own node
 * certificate), holds its own gRPC channel (its own mutual-TLS connection),
 * and runs the agent's own StoreSession and SecretCache from src/agent: the
 * same Hello, snapshot and delta handling, acks, heartbeats and reconnect
 * backoff as `hush agent`. Nothing of the agent is copied here; this file
 * only watches the session's stream (the client it dials is wrapped) to
 * timestamp what arrives and when each ack leaves.
 *
 * Times are wall-clock milliseconds with sub-millisecond precision
 * (performance.timeOrigin + performance.now()), comparable across the
 * processes of one machine.
 */
import { performance } from 'node:perf_hooks';
import { SecretCache, StoreSession, joinStore, parseStoreAddress } from '../../src/agent/index.js';
import { log } from '../../src/log/index.js';
import { nodeClient, type AgentMessage, type NodeClient, type StoreMessage, type WireSecretVersion } from '../../src/protocol/index.js';
import { startCountingProxy, type CountingProxy } from './counting-proxy.js';
import type { SessionRecord, WorkerReply, WorkerRequest } from './sim-fleet.js';

type Identity = Awaited<ReturnType<typeof joinStore>>;

interface Received {
  receivedAt: number;
  revision: number;
  ackedAt?: number;
}

interface SimSession {
  name: string;
  service: string;
  session: StoreSession;
  client: NodeClient;
  proxy?: CountingProxy;
  attempts: number[];
  ready: number[];
  lost: number[];
  /** `${secret}@${version}` of the watched secrets → when it arrived and when its revision was acked. */
  got: Map<string, Received>;
  messagesSinceMark: number;
  bytesAtMark: { toAgent: number; toStore: number };
}

const now = () => performance.timeOrigin + performance.now();
const quiet = log.child({ component: 'agent-sim' }, { level: process.env.HUSH_SIM_LOG_LEVEL ?? 'silent' });
const identities = new Map<string, Identity>();
const sessions = new Map<string, SimSession>();

async function join(target: string, token: string, names: string[], concurrency: number): Promise<number> {
  const address = parseStoreAddress(target);
  let next = 0;
  const loop = async () => {
    while (next < names.length) {
      const name = names[next++]!;
      identities.set(name, await joinStore({ address, token, name, hostname: name }));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return identities.size;
}

/** The agent's session for `name`, with its stream watched: attempts, snapshots, watched versions, acks, ends. */
async function connect(name: string, service: string, target: string, watch: ReadonlySet<string>, countBytes: boolean): Promise<SimSession> {
  const identity = identities.get(name);
  if (!identity) throw new Error(`${name} has not joined in this process`);
  let proxy: CountingProxy | undefined;
  if (countBytes) {
    const { host, port } = parseStoreAddress(target);
    proxy = await startCountingProxy(host, port);
  }
  // One channel for the agent's life, as `hush agent` keeps one per store address.
  const client = nodeClient({ target: proxy?.target ?? target }, identity);
  const sim = { name, service, client, proxy, attempts: [], ready: [], lost: [], got: new Map(), messagesSinceMark: 0, bytesAtMark: { toAgent: 0, toStore: 0 } } as unknown as SimSession;
  const record = (secrets: WireSecretVersion[], revision: number) => {
    for (const s of secrets) {
      if (!watch.has(s.name)) continue;
      const key = `${s.name}@${s.version}`;
      if (!sim.got.has(key)) sim.got.set(key, { receivedAt: now(), revision });
    }
  };
  const watched = {
    Session: (...args: Parameters<NodeClient['Session']>) => {
      sim.attempts.push(now());
      const stream = client.Session(...args);
      let ended = false;
      // Added before the session's own listener, so the time is taken before the agent applies the message.
      stream.on('data', (message: StoreMessage) => {
        sim.messagesSinceMark++;
        if (message.body === 'snapshot') {
          sim.ready.push(now());
          record(message.snapshot.secrets, message.snapshot.revision);
        } else if (message.body === 'delta') record(message.delta.upserts, message.delta.revision);
      });
      stream.on('status', () => {
        if (!ended) sim.lost.push(now());
        ended = true;
      });
      const write = stream.write.bind(stream) as (message: AgentMessage) => boolean;
      stream.write = ((message: AgentMessage) => {
        if (message.body === 'ack') {
          const at = now();
          for (const r of sim.got.values()) if (r.ackedAt === undefined && r.revision <= message.ack.revision) r.ackedAt = at;
        }
        return write(message);
      }) as typeof stream.write;
      return stream;
    },
  } as unknown as NodeClient;
  sim.session = new StoreSession({
    client: () => watched,
    cache: new SecretCache(),
    containers: () => [{ id: `c-${name}`, service }],
    certificateExpiry: () => identity.notAfter,
    log: quiet,
  });
  sessions.set(name, sim);
  sim.session.start();
  return sim;
}

function mark(): void {
  for (const s of sessions.values()) {
    s.messagesSinceMark = 0;
    s.bytesAtMark = { toAgent: s.proxy?.toAgent ?? 0, toStore: s.proxy?.toStore ?? 0 };
  }
}

function collect(): SessionRecord[] {
  return [...sessions.values()].map((s) => ({
    name: s.name,
    service: s.service,
    state: s.session.state,
    attempts: s.attempts,
    ready: s.ready,
    lost: s.lost,
    got: Object.fromEntries(s.got),
    messagesSinceMark: s.messagesSinceMark,
    bytesToAgentSinceMark: s.proxy ? s.proxy.toAgent - s.bytesAtMark.toAgent : undefined,
    bytesToStoreSinceMark: s.proxy ? s.proxy.toStore - s.bytesAtMark.toStore : undefined,
  }));
}

async function closeAll(): Promise<void> {
  for (const s of sessions.values()) {
    s.session.close();
    s.client.close();
  }
  await Promise.all([...sessions.values()].map((s) => s.proxy?.close()));
  sessions.clear();
}

async function handle(request: WorkerRequest): Promise<unknown> {
  switch (request.type) {
    case 'join':
      return join(request.target, request.token, request.names, request.concurrency);
    case 'connect': {
      const watch = new Set(request.watch);
      const started = await Promise.all(request.sessions.map((s) => connect(s.name, s.service, request.target, watch, request.countBytes)));
      const ready = await Promise.all(started.map((s) => s.session.whenReady(request.readyTimeoutMs)));
      const missing = started.filter((_, i) => !ready[i]).map((s) => s.name);
      if (missing.length > 0) throw new Error(`${missing.length} sessions not ready within ${request.readyTimeoutMs} ms (e.g. ${missing.slice(0, 3).join(', ')})`);
      return started.length;
    }
    case 'acked': {
      let n = 0;
      for (const s of sessions.values()) if (s.got.get(request.key)?.ackedAt !== undefined) n++;
      return n;
    }
    case 'ready': {
      let n = 0;
      for (const s of sessions.values()) if (s.session.state === 'ready') n++;
      return n;
    }
    case 'mark':
      return mark();
    case 'collect':
      return collect();
    case 'close':
      return closeAll();
    case 'rss':
      return process.memoryUsage().rss;
  }
}

process.on('message', (request: WorkerRequest) => {
  handle(request).then(
    (result) => process.send!({ id: request.id, ok: true, result } satisfies WorkerReply),
    (err: unknown) => process.send!({ id: request.id, ok: false, error: (err as Error).stack ?? String(err) } satisfies WorkerReply),
  );
});
// The fleet's end (or its death) ends this process: nothing here outlives the bench.
process.on('disconnect', () => process.exit(0));
process.send!({ id: 0, ok: true, result: 'started' } satisfies WorkerReply);
