/**
 * A node at its container limit (NodeLimits.maxContainersPerNode) asks to
 * start one more: the store refuses it as it refuses a container a rule does
 * not allow, with the limit's own reason (naming the flag that raises it),
 * logged as a warning rather than a store failure, and with nothing changed
 * on the node's record.
 */
import { expect } from 'chai';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { AgentMessage, StoreMessage, WireDecision } from '../../src/protocol/index.js';
import { PropagationTracker } from '../../src/rotation/index.js';
import { Dispatcher } from '../../src/server/dispatcher.js';
import { openStore, type OpenedStore } from '../../src/store/index.js';
import { FakeSessionStream } from '../helpers/session-stream.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const MAX = 3;

describe('dispatcher: a container start over the node container limit', () => {
  let dir: string;
  let store: OpenedStore;
  let dispatcher: Dispatcher;
  let nodeId: string;
  let stream: FakeSessionStream;
  /** Every line the dispatcher logged, parsed. */
  let logged: { level: number; msg: string }[];

  beforeEach(async () => {
    dir = await tempDir();
    store = await openStore({ dataDir: dir });
    logged = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) logged.push(JSON.parse(line) as { level: number; msg: string });
        done();
      },
    });
    dispatcher = new Dispatcher(store, pino({ level: 'debug' }, sink), { maxContainersPerNode: MAX }, new PropagationTracker());
    await dispatcher.start();
    await store.secrets.create('db_pw', new TextEncoder().encode('v1'));
    await store.services.put({ name: 'db', grants: [{ source: 'db_pw', target: 'db_pw', uid: 0, gid: 0, mode: 0o444 }], constraints: [] });
    nodeId = (await store.nodes.register({ name: 'n1', hostname: 'n1', engineLabels: {} })).id;
    stream = new FakeSessionStream();
    dispatcher.openSession({ nodeId, role: 'node', certPem: '' }, stream as never);
    stream.emit('data', { body: 'hello', hello: { containers: [], last_revision: 0 } } as AgentMessage);
    await until(() => stream.written.length > 0, 'the session\'s first send', 5_000, 10);
  });
  afterEach(async () => {
    dispatcher?.stop();
    await store.backend.close();
    await removeDir(dir);
  });

  /** Asks to start container `id` of service db and waits for the store's decision on it. */
  async function start(id: string): Promise<WireDecision> {
    const requestId = `req-${id}`;
    stream.emit('data', { body: 'container_start', container_start: { request_id: requestId, container: { id, service: 'db' } } } as AgentMessage);
    const decisionOf = () => stream.written.find((m): m is Extract<StoreMessage, { body: 'decision' }> => m.body === 'decision' && m.decision.request_id === requestId)?.decision;
    await until(() => decisionOf() !== undefined, 'the store\'s decision', 5_000, 10);
    return decisionOf()!;
  }

  it('allows starts up to the limit, then refuses the next with the limit as its reason, logs it at warn, and leaves the node record as it was', async () => {
    for (let i = 0; i < MAX; i++) expect(await start(`c${i}`), `start ${i + 1} of ${MAX}`).to.include({ allowed: true, reason: '' });
    const before = await store.nodes.get(nodeId);
    expect(before.containers.map((c) => c.id)).to.deep.equal(['c0', 'c1', 'c2']);

    const refused = await start('c-over');
    expect(refused.allowed).to.equal(false);
    expect(refused.reason).to.equal(`this node already runs ${MAX} containers with secrets, the most a node may (store flag --node-max-containers)`);
    expect(refused.reason, 'not reported as a store failure').not.to.include('could not register');

    const after = await store.nodes.get(nodeId);
    expect(after.containers).to.deep.equal(before.containers);
    expect(after.updatedAt, 'no write to the node record').to.equal(before.updatedAt);

    const refusals = logged.filter((l) => l.msg.includes('container start'));
    expect(refusals.map((l) => [l.level, l.msg])).to.deep.equal([[pino.levels.values.warn, 'container start refused: node at its container limit']]);
    expect(logged.filter((l) => l.level >= pino.levels.values.error!), 'nothing logged as an error').to.deep.equal([]);

    // The same container id asking again (an agent retrying) is no new container: still refused while the node is full,
    // and a running container's id re-registered is not counted twice.
    expect((await start('c-over')).allowed).to.equal(false);
    expect(await start('c1')).to.include({ allowed: true });
    expect((await store.nodes.get(nodeId)).containers.map((c) => c.id).sort()).to.deep.equal(['c0', 'c1', 'c2']);
  });
});
