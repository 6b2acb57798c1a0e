/**
 * Resuming a session: an agent that reconnects names what it holds, and the
 * store sends a Delta over it instead of every value again. The agent side
 * is the real SecretCache; what it ends with after the resumed Delta is
 * compared with what a fresh Snapshot gives, name by name, value by value.
 */
import { expect } from 'chai';
import pino from 'pino';
import { SecretCache } from '../../src/agent/cache.js';
import { StoreMetrics } from '../../src/metrics/index.js';
import type { AgentMessage, WireContainer, WireDelta, WireHello, WireSnapshot } from '../../src/protocol/index.js';
import { PropagationTracker } from '../../src/rotation/index.js';
import { Dispatcher } from '../../src/server/dispatcher.js';
import { openStore, type OpenedStore } from '../../src/store/index.js';
import { FakeSessionStream } from '../helpers/session-stream.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const text = (s: string) => new TextEncoder().encode(s);
const grant = (source: string) => ({ source, target: source, uid: 0, gid: 0, mode: 0o444 });
const containers: WireContainer[] = [
  { id: 'c-web', service: 'web' },
  { id: 'c-api', service: 'api' },
];

/** Everything a cache holds, values included, to compare two caches. */
function contents(cache: SecretCache): unknown {
  const held = cache.held();
  return {
    secrets: held.secrets.map((s) => ({ ...s, value: cache.read(s.name)?.toString('utf8') })),
    services: held.services,
  };
}

describe('dispatcher: resuming a session from the revision the agent holds', () => {
  let dir: string;
  let store: OpenedStore;
  let dispatcher: Dispatcher;
  let metrics: StoreMetrics;
  let nodeId: string;

  beforeEach(async () => {
    dir = await tempDir();
    store = await openStore({ dataDir: dir });
    metrics = new StoreMetrics();
    dispatcher = new Dispatcher(store, pino({ level: 'silent' }), { maxContainersPerNode: 10 }, new PropagationTracker(), metrics);
    await dispatcher.start();
    for (const name of ['keep', 'rotated', 'dropped', 'recreated']) await store.secrets.create(name, text(`${name}-1`));
    await store.services.put({ name: 'web', grants: ['keep', 'rotated', 'dropped', 'recreated'].map(grant), constraints: [] });
    await store.services.put({ name: 'api', grants: [grant('keep')], constraints: [] });
    nodeId = (await store.nodes.register({ name: 'n1', hostname: 'n1', engineLabels: {} })).id;
  });
  afterEach(async () => {
    dispatcher?.stop();
    await store.backend.close();
    await removeDir(dir);
  });

  /** Opens a session, sends `hello`, and returns the stream once the store's first message is there. */
  async function session(hello: WireHello): Promise<FakeSessionStream> {
    const stream = new FakeSessionStream();
    dispatcher.openSession({ nodeId, role: 'node', certPem: '' }, stream as never);
    stream.emit('data', { body: 'hello', hello } as AgentMessage);
    await until(() => stream.written.length > 0, 'the first send of the session', 5_000, 10);
    return stream;
  }

  function close(stream: FakeSessionStream): void {
    stream.emit('end');
  }

  async function startedWith(): Promise<Record<string, number>> {
    const text = await metrics.text();
    const count = (kind: string) => Number(new RegExp(`hush_sessions_resumed_total\\{kind="${kind}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    return { delta: count('delta'), snapshot: count('snapshot') };
  }

  /** The cache a first session leaves on the agent, and that session closed. */
  async function firstSession(): Promise<SecretCache> {
    const cache = new SecretCache();
    const first = await session({ containers, last_revision: 0 });
    const start = first.written[0]!;
    expect(start.body).to.equal('snapshot');
    cache.replace((start as { snapshot: WireSnapshot }).snapshot);
    close(first);
    return cache;
  }

  /** What a fresh agent gets now: the truth to compare a resumed cache with. */
  async function freshSnapshot(): Promise<SecretCache> {
    const cache = new SecretCache();
    const fresh = await session({ containers, last_revision: 0 });
    cache.replace((fresh.written[0] as { snapshot: WireSnapshot }).snapshot);
    close(fresh);
    return cache;
  }

  function resumeHello(cache: SecretCache): WireHello {
    const held = cache.holdings();
    return { containers, last_revision: held.revision, resume: true, held: held.secrets, held_services: held.services };
  }

  it('sends only what changed while the agent was away (a new version, a dropped grant, a secret made again under its name, a removed service), and the agent ends holding exactly what a snapshot gives', async () => {
    const cache = await firstSession();
    expect(cache.held().secrets.map((s) => s.name)).to.deep.equal(['dropped', 'keep', 'recreated', 'rotated']);

    // While the agent is away:
    await store.secrets.rotate('rotated', text('rotated-2'));
    await store.services.put({ name: 'web', grants: ['keep', 'rotated', 'recreated'].map(grant), constraints: [] }, { replace: true });
    await store.secrets.remove('dropped');
    // Made again under the same name: version 1 again, another value. Only its id tells the two apart.
    await store.services.put({ name: 'web', grants: ['keep', 'rotated'].map(grant), constraints: [] }, { replace: true });
    await store.secrets.remove('recreated');
    await store.secrets.create('recreated', text('recreated-again'));
    await store.services.put({ name: 'web', grants: ['keep', 'rotated', 'recreated'].map(grant), constraints: [] }, { replace: true });
    await store.services.remove('api');

    const before = await startedWith();
    const resumed = await session(resumeHello(cache));
    const start = resumed.written[0]!;
    expect(start.body, 'the first message of a resumed session').to.equal('delta');
    const delta = (start as { delta: WireDelta }).delta;
    expect(delta.base_revision).to.equal(cache.revision);
    expect(delta.heartbeat_period_ms).to.be.greaterThan(0);
    expect(delta.upserts.map((u) => [u.name, u.version]).sort()).to.deep.equal([
      ['recreated', 1],
      ['rotated', 2],
    ]);
    expect(delta.removals).to.deep.equal(['dropped']);
    expect(delta.removed_services).to.deep.equal(['api']);
    expect(delta.services.map((s) => s.service)).to.deep.equal(['web']);
    expect(await startedWith()).to.deep.equal({ delta: before.delta + 1, snapshot: before.snapshot });

    cache.apply(delta);
    close(resumed);
    expect(contents(cache)).to.deep.equal(contents(await freshSnapshot()));
    expect(cache.read('recreated')?.toString('utf8')).to.equal('recreated-again');
  });

  it('resumes with an empty delta when nothing changed, and later changes follow as deltas', async () => {
    const cache = await firstSession();
    const resumed = await session(resumeHello(cache));
    const delta = (resumed.written[0] as { delta: WireDelta }).delta;
    expect(resumed.written[0]!.body).to.equal('delta');
    expect(delta.upserts).to.deep.equal([]);
    expect(delta.removals).to.deep.equal([]);
    expect(delta.revision).to.be.at.least(cache.revision);
    cache.apply(delta);

    await store.secrets.rotate('keep', text('keep-2'));
    await until(() => resumed.written.length > 1, 'a delta after the resume', 5_000, 10);
    const next = resumed.written[1]!;
    expect(next.body).to.equal('delta');
    const update = (next as { delta: WireDelta }).delta;
    expect(update.base_revision ?? 0, 'a delta inside a session names no base').to.equal(0);
    expect(update.upserts.map((u) => [u.name, u.version])).to.deep.equal([['keep', 2]]);
    cache.apply(update);
    close(resumed);
    expect(contents(cache)).to.deep.equal(contents(await freshSnapshot()));
  });

  it('sends a snapshot when the agent names a revision this store has not reached (a store restored from a backup, another history)', async () => {
    const cache = await firstSession();
    const hello = resumeHello(cache);
    hello.last_revision = store.backend.revision() + 1000;
    const before = await startedWith();
    const restarted = await session(hello);
    expect(restarted.written[0]!.body).to.equal('snapshot');
    expect(await startedWith()).to.deep.equal({ delta: before.delta, snapshot: before.snapshot + 1 });
    close(restarted);
  });

  it('sends a snapshot to an agent that does not ask to resume (one from before resuming, or one that holds nothing), and counts only the asks', async () => {
    const cache = await firstSession();
    const before = await startedWith();
    // An older agent sends its revision but no list: what it holds is unknown, so it must get everything.
    const old = await session({ containers, last_revision: cache.revision });
    expect(old.written[0]!.body).to.equal('snapshot');
    close(old);
    const empty = await session({ containers, last_revision: 0, resume: true, held: [], held_services: [] });
    expect(empty.written[0]!.body).to.equal('snapshot');
    close(empty);
    expect(await startedWith()).to.deep.equal({ delta: before.delta, snapshot: before.snapshot + 1 });
  });

  it('refuses a resuming hello that lists a held secret twice or with a malformed id, and sends nothing', async () => {
    const cache = await firstSession();
    for (const held of [
      [...cache.holdings().secrets, cache.holdings().secrets[0]!],
      [{ name: 'keep', secret_id: '../../x', version: 1 }],
      [{ name: 'keep', secret_id: 'abc', version: 0 }],
    ]) {
      const stream = new FakeSessionStream();
      let error: Error | undefined;
      stream.on('error', (err: Error) => (error = err));
      dispatcher.openSession({ nodeId, role: 'node', certPem: '' }, stream as never);
      stream.emit('data', { body: 'hello', hello: { containers, last_revision: cache.revision, resume: true, held, held_services: [] } } as AgentMessage);
      await until(() => error !== undefined, 'the session to end with an error', 5_000, 10);
      expect(error!.message).to.match(/listed twice|malformed id|no valid version/);
      expect(stream.written).to.deep.equal([]);
    }
  });
});
