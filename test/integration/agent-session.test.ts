/**
 * The agent against a store that misbehaves in ways the real one does not
 * (never sends a snapshot, never decides), through a stand-in speaking the
 * real node protocol over real mutual TLS (test/helpers/agent-fake-store.ts).
 * Everything the real store can do is tested against the real store in
 * agent-e2e.test.ts.
 */
import { expect } from 'chai';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { startAgent, type AgentOptions, type RunningAgent } from '../../src/agent/index.js';
import { log } from '../../src/log/index.js';
import type { WireHello } from '../../src/protocol/index.js';
import { FakeStore, grant } from '../helpers/agent-fake-store.js';
import { ChaosProxy } from '../helpers/chaos-proxy.js';
import { rejection } from '../helpers/assert.js';
import { call, closeClients, type ErrorBody } from '../helpers/http.js';
import { newTestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const quiet = log.child({}, { level: 'silent' });

describe('agent against a misbehaving store (fault injection; real gRPC, real mutual TLS)', function () {
  this.timeout(60_000);
  let dir: string;
  let store: FakeStore;
  const agents: RunningAgent[] = [];

  const start = async (name: string, labels: Record<string, string>, extra: Partial<AgentOptions> = {}): Promise<RunningAgent> => {
    const agent = await startAgent({
      store: store.address,
      token: store.token,
      name,
      labels,
      socket: join(dir, `${name}.sock`),
      debug: true,
      log: quiet,
      decisionTimeoutMs: 2_000,
      connectWaitMs: 500,
      backoff: { baseMs: 50, capMs: 300 },
      ...extra,
    });
    agents.push(agent);
    return agent;
  };
  const ready = (agent: RunningAgent) => until(() => agent.session.state === 'ready', `${agent.nodeId} ready`, 10_000);

  beforeEach(async () => {
    dir = await tempDir('hush-agent-session-');
    store = await new FakeStore().start();
    store.services.set('api', {
      grants: [grant('db_password', 'db', 0o400)],
      constraint: (labels) => (labels.zone === 'eu' ? undefined : `constraint node.labels.zone==eu is not met (node has zone=${labels.zone ?? '(none)'})`),
    });
    store.setSecret('db_password', Buffer.from('pw-version-1'));
    store.setSecret('ungranted', Buffer.from('nobody-gets-this'));
  });
  afterEach(async () => {
    closeClients();
    await Promise.all(agents.splice(0).map((a) => a.close()));
    store.kill();
    await removeDir(dir);
  });

  it('abandons a session that never brings a snapshot and tries again', async () => {
    store.mute = true;
    const agent = await start('n1', {}, { snapshotTimeoutMs: 300 });
    await until(() => store.sessions.length >= 2, 'a second session after the snapshot timeout', 10_000);
    expect(agent.session.status().lastError).to.match(/no snapshot from the store within 300 ms/);
    store.mute = false;
    await ready(agent);
  });

  it('resumes from what it holds after a reconnect; a resumed start over a revision it did not name is refused, and it asks for a snapshot next', async () => {
    const agent = await start('n1', { zone: 'eu' });
    await ready(agent);
    const reply = await call(agent.socket, 'POST', '/v1/containers', { id: 'c1', service: 'api' });
    expect(reply.status, reply.text).to.equal(201);
    const hellos = () => store.sessions.flatMap((s) => s.received.filter((m) => m.body === 'hello').map((m) => (m as { hello: WireHello }).hello));
    // A store that answers a resume over the wrong base.
    store.resumeOver = (hello) => hello.last_revision + 5;
    store.kill();
    await store.start();
    await until(() => hellos().length >= 3, 'a resuming hello, then one asking for a snapshot', 10_000);
    const [, resuming, fresh] = hellos();
    expect(resuming!.resume).to.equal(true);
    expect(resuming!.held!.map((h) => [h.name, h.version])).to.deep.equal([['db_password', 1]]);
    expect(resuming!.held_services).to.deep.equal(['api']);
    expect(resuming!.last_revision).to.be.greaterThan(0);
    expect(fresh!.resume ?? false, 'after a refused resume, a snapshot is asked for').to.equal(false);
    await ready(agent);
    expect(agent.cache.read('db_password')?.toString()).to.equal('pw-version-1');
  });

  it('dials a new connection when an attempt stalls on one that is accepted and never answered', async () => {
    const [host, port] = store.address.split(':') as [string, string];
    const proxy = await ChaosProxy.start({ host, port: Number(port) });
    try {
      const agent = await start('n1', {}, { store: proxy.address, snapshotTimeoutMs: 300 });
      await ready(agent);
      // The next attempt goes into a partition: its TCP connection is accepted, its TLS handshake never answered.
      proxy.blackhole();
      const accepted = proxy.accepted;
      proxy.reset();
      await until(() => proxy.accepted > accepted, 'an attempt into the partition', 10_000);
      // The partition ends, but that connection stays dead: only a new one gets through.
      proxy.heal({ strand: true });
      await ready(agent);
      expect(proxy.accepted, 'a connection dialled after the heal').to.be.above(accepted + 1);
    } finally {
      await proxy.close();
    }
  });

  it('answers 504 when the store never decides', async () => {
    const agent = await start('n1', { zone: 'eu' });
    await ready(agent);
    store.silent = true;
    const reply = await call<ErrorBody>(agent.socket, 'POST', '/v1/containers', { id: 'c1', service: 'api' });
    expect(reply.status).to.equal(504);
    expect(reply.body.error.code).to.equal('timeout');
    await until(() => store.liveSessions()[0]!.received.some((m) => m.body === 'container_stop'), 'start withdrawn', 10_000);
  });

  it('refuses to start against an impostor CA and leaves no socket behind', async () => {
    const socket = join(dir, 'impostor.sock');
    const err = await rejection(
      startAgent({ store: store.address, token: newTestCa().joinToken(store.joinSecret), socket, log: quiet }),
    );
    expect(err.message).to.match(/presents CA [0-9a-f]{64}, but the join token expects [0-9a-f]{64}: wrong store or an impostor/);
    expect(store.joins).to.deep.equal([]);
    expect(await access(socket).then(() => true, () => false)).to.equal(false);
  });

  it('closes cleanly: the session ends at the store and the socket is removed', async () => {
    const agent = await start('n1', {});
    await ready(agent);
    await agent.close();
    await until(() => store.liveSessions().length === 0, 'session ended at the store', 10_000);
    expect(await access(agent.socket).then(() => true, () => false)).to.equal(false);
  });
});
