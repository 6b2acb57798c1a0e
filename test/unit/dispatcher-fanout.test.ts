import { expect } from 'chai';
import pino from 'pino';
import type { AgentMessage } from '../../src/protocol/index.js';
import { PropagationTracker } from '../../src/rotation/index.js';
import { Dispatcher } from '../../src/server/dispatcher.js';
import { keys, NodeStore, openStore, type Backend, type OpenedStore } from '../../src/store/index.js';
import { FakeSessionStream } from '../helpers/session-stream.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

/** Counts reads of node records: the dispatcher reads a node's record each time it re-checks that node. */
function countingBackend(inner: Backend): { backend: Backend; nodeReads: () => number } {
  let reads = 0;
  const backend: Backend = {
    get: (key) => {
      if (key.startsWith(keys.NODE_PREFIX)) reads++;
      return inner.get(key);
    },
    list: (prefix) => inner.list(prefix),
    commit: (txn) => inner.commit(txn),
    revision: () => inner.revision(),
    watch: (listener) => inner.watch(listener),
    close: () => inner.close(),
  };
  return { backend, nodeReads: () => reads };
}

describe('dispatcher fan-out: a change re-checks only the nodes it affects', () => {
  let dir: string;
  let store: OpenedStore;
  let dispatcher: Dispatcher;
  beforeEach(async () => {
    dir = await tempDir();
    store = await openStore({ dataDir: dir });
  });
  afterEach(async () => {
    dispatcher?.stop();
    await store.backend.close();
    await removeDir(dir);
  });

  it('100 sessions; rotating a secret of one service that runs on 3 of them re-checks and updates those 3, and their acks reach the tracker', async () => {
    const grant = (source: string) => ({ source, target: source, uid: 0, gid: 0, mode: 0o444 });
    await store.secrets.create('db_pw', new TextEncoder().encode('v1'));
    await store.secrets.create('api_key', new TextEncoder().encode('k1'));
    await store.services.put({ name: 'db', grants: [grant('db_pw')], constraints: [] });
    await store.services.put({ name: 'web', grants: [grant('api_key')], constraints: [] });
    const counting = countingBackend(store.backend);
    const tracker = new PropagationTracker();
    const nodes = new NodeStore(counting.backend);
    dispatcher = new Dispatcher({ ...store, nodes, watched: { ...store.watched, nodes } }, pino({ level: 'silent' }), { maxContainersPerNode: 10 }, tracker);
    await dispatcher.start();

    const streams = new Map<string, FakeSessionStream>();
    for (let i = 0; i < 100; i++) {
      const node = await store.nodes.register({ name: `node${i}`, hostname: `node${i}`, engineLabels: {} });
      const stream = new FakeSessionStream();
      streams.set(node.id, stream);
      dispatcher.openSession({ nodeId: node.id, role: 'node', certPem: '' }, stream as never);
      const hello: AgentMessage = { body: 'hello', hello: { containers: [{ id: `c${i}`, service: i < 3 ? 'db' : 'web' }] } } as AgentMessage;
      stream.emit('data', hello);
    }
    const sentDbPw = (s: FakeSessionStream) =>
      s.written.some((m) => (m.body === 'snapshot' && m.snapshot.secrets.some((v) => v.name === 'db_pw')) || (m.body === 'delta' && m.delta.upserts.some((v) => v.name === 'db_pw')));
    const sentApiKey = (s: FakeSessionStream) =>
      s.written.some((m) => (m.body === 'snapshot' && m.snapshot.secrets.some((v) => v.name === 'api_key')) || (m.body === 'delta' && m.delta.upserts.some((v) => v.name === 'api_key')));
    await until(() => [...streams.values()].every((s) => sentDbPw(s) || sentApiKey(s)), 'every session sent its secrets', 5_000, 10);
    const dbNodes = [...streams.entries()].filter(([, s]) => sentDbPw(s)).map(([id]) => id);
    expect(dbNodes).to.have.length(3);
    // Settle: no session has work left from the hellos.
    await new Promise((r) => setTimeout(r, 100));

    const readsBefore = counting.nodeReads();
    const writesBefore = new Map([...streams].map(([id, s]) => [id, s.written.length]));
    await store.secrets.rotate('db_pw', new TextEncoder().encode('v2'));
    await until(() => dbNodes.every((id) => streams.get(id)!.written.length > writesBefore.get(id)!), 'the 3 db nodes sent the rotation', 5_000, 10);
    await new Promise((r) => setTimeout(r, 100));

    expect(counting.nodeReads() - readsBefore, 'node records read (one per re-checked session)').to.equal(3);
    const updated = [...streams].filter(([id, s]) => s.written.length > writesBefore.get(id)!).map(([id]) => id);
    expect(updated.sort()).to.deep.equal([...dbNodes].sort());
    for (const id of dbNodes) {
      const delta = streams.get(id)!.written.at(-1)!;
      expect(delta.body).to.equal('delta');
      if (delta.body !== 'delta') continue;
      expect(delta.delta.upserts.map((u) => [u.name, u.version])).to.deep.equal([['db_pw', 2]]);
      streams.get(id)!.emit('data', { body: 'ack', ack: { revision: delta.delta.revision } } as AgentMessage);
    }
    await until(() => tracker.propagation('db_pw', 2, dbNodes).complete, 'the acks of version 2 at the tracker', 5_000, 10);
    expect(tracker.versionOn(updated[0]!, 'db_pw')).to.equal(2);
    expect(dispatcher.status(updated[0]!).ackedRevision).to.be.greaterThan(0);
  });
  it('a rotation that reaches 100 nodes reads the service list once, not once per node', async () => {
    // Per node, the read scanned the whole engine (every secret) 100 times over; at 1,000 nodes and 10,000 secrets it held the rotate call ~2 s.
    const grant = { source: 'db_pw', target: 'db_pw', uid: 0, gid: 0, mode: 0o444 };
    await store.secrets.create('db_pw', new TextEncoder().encode('v1'));
    await store.services.put({ name: 'db', grants: [grant], constraints: [] });
    let lists = 0;
    const services = Object.assign(Object.create(store.services) as typeof store.services, {
      list: () => {
        lists++;
        return store.services.list();
      },
    });
    dispatcher = new Dispatcher({ ...store, services, watched: { ...store.watched, services } }, pino({ level: 'silent' }), { maxContainersPerNode: 10 }, new PropagationTracker());
    await dispatcher.start();
    const streams: FakeSessionStream[] = [];
    for (let i = 0; i < 100; i++) {
      const node = await store.nodes.register({ name: `node${i}`, hostname: `node${i}`, engineLabels: {} });
      const stream = new FakeSessionStream();
      streams.push(stream);
      dispatcher.openSession({ nodeId: node.id, role: 'node', certPem: '' }, stream as never);
      stream.emit('data', { body: 'hello', hello: { containers: [{ id: `c${i}`, service: 'db' }] } } as AgentMessage);
    }
    await until(() => streams.every((s) => s.written.some((m) => m.body === 'snapshot')), 'a snapshot to every session', 5_000, 10);
    await new Promise((r) => setTimeout(r, 100));

    const before = lists;
    await store.secrets.rotate('db_pw', new TextEncoder().encode('v2'));
    const gotV2 = (s: FakeSessionStream) => s.written.some((m) => m.body === 'delta' && m.delta.upserts.some((u) => u.name === 'db_pw' && u.version === 2));
    await until(() => streams.every(gotV2), 'version 2 to every session', 5_000, 10);
    expect(lists - before, 'service list reads for one rotation seen by 100 nodes').to.equal(1);
  });
});
