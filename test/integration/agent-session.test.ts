/**
 * The whole agent (join, session, cache, renewal, runtime API) in this
 * process, against a fake store speaking the real node protocol over real
 * mutual TLS (test/helpers/agent-fake-store.ts): entitlement by labels,
 * rotation, store crash and restart, revocation, certificate renewal.
 */
import { expect } from 'chai';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { startAgent, type AgentOptions, type RunningAgent } from '../../src/agent/index.js';
import { certFingerprint, createClusterCa, formatJoinToken } from '../../src/pki/index.js';
import { log } from '../../src/log/index.js';
import { FakeStore, grant } from '../helpers/agent-fake-store.js';
import { rejection } from '../helpers/assert.js';
import { call, closeClients } from '../helpers/http.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const quiet = log.child({}, { level: 'silent' });

interface ErrorBody {
  error: { code: string; message: string };
}

describe('agent against a fake store (real gRPC, real mutual TLS)', function () {
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
  const ready = (agent: RunningAgent) => store.until(() => agent.session.state === 'ready', `${agent.nodeId} ready`);
  const held = async (agent: RunningAgent) =>
    (await call<{ secrets: { name: string; version: number }[] }>(agent.socket, 'GET', '/v1/debug/held')).body.secrets;

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

  it('delivers a service’s secrets to the node it may run on and refuses the other with the reason', async () => {
    const eu = await start('eu-node', { zone: 'eu' });
    const us = await start('us-node', { zone: 'us' });
    await Promise.all([ready(eu), ready(us)]);
    expect(store.joins.map((j) => j.labels)).to.deep.equal([{ zone: 'eu' }, { zone: 'us' }]);

    const allowed = await call<Record<string, unknown>>(eu.socket, 'POST', '/v1/containers', { id: 'c1', service: 'api' });
    expect(allowed.status).to.equal(201);
    expect(allowed.body).to.deep.include({ id: 'c1', service: 'api', secrets: ['db'], mount: null });
    expect(eu.cache.read('db_password')!.toString()).to.equal('pw-version-1');
    expect(eu.sourceForService('api').lookup('db')).to.include({ mode: 0o400, size: 12 });

    const refused = await call<ErrorBody>(us.socket, 'POST', '/v1/containers', { id: 'c1', service: 'api' });
    expect(refused.status).to.equal(403);
    expect(refused.body.error).to.deep.equal({ code: 'forbidden', message: 'constraint node.labels.zone==eu is not met (node has zone=us)' });
    const unknown = await call<ErrorBody>(us.socket, 'POST', '/v1/containers', { id: 'c2', service: 'nope' });
    expect(unknown.body.error.message).to.equal('unknown service "nope"');

    expect(await held(eu)).to.deep.equal([{ name: 'db_password', version: 1 }]);
    expect(await held(us)).to.deep.equal([]);
    for (const agent of [eu, us]) expect(agent.cache.get('ungranted')).to.equal(undefined);

    // The protocol as the store saw it: Hello first, then acks of what was applied.
    const session = store.liveSessions().find((s) => s.nodeId === eu.nodeId)!;
    expect(session.received[0]).to.deep.include({ body: 'hello' });
    const acks = session.received.filter((m) => m.body === 'ack').map((m) => (m.body === 'ack' ? m.ack.revision : 0));
    expect(acks.at(-1)).to.equal(eu.cache.revision);
  });

  it('swaps in a rotated version (an open file keeps the old one) and drops secrets when the last container stops', async () => {
    const agent = await start('n1', { zone: 'eu' });
    await ready(agent);
    expect((await call(agent.socket, 'POST', '/v1/containers', { id: 'c1', service: 'api' })).status).to.equal(201);
    const openFile = agent.sourceForService('api').lookup('db')!.open();

    store.setSecret('db_password', Buffer.from('pw-version-2-longer'));
    await store.until(() => agent.cache.get('db_password')?.version === 2, 'rotation applied');
    expect(agent.sourceForService('api').lookup('db')!.open().read(0, 64).toString()).to.equal('pw-version-2-longer');
    expect(openFile.read(0, 64).toString()).to.equal('pw-version-1');
    await store.until(
      () => store.liveSessions()[0]!.received.some((m) => m.body === 'ack' && m.ack.revision === agent.cache.revision),
      'ack of the rotation',
    );

    expect((await call(agent.socket, 'DELETE', '/v1/containers/c1')).status).to.equal(204);
    await store.until(() => agent.cache.get('db_password') === undefined, 'secret dropped after the last container stopped');
    expect(agent.sourceForService('api').list()).to.deep.equal([]);
  });

  it('keeps serving through a store crash, answers 503 meanwhile, then reconnects, re-announces its containers and converges', async () => {
    const agent = await start('n1', { zone: 'eu' });
    await ready(agent);
    expect((await call(agent.socket, 'POST', '/v1/containers', { id: 'c1', service: 'api' })).status).to.equal(201);

    store.kill();
    await store.until(() => agent.session.state !== 'ready', 'session lost');
    expect(agent.cache.read('db_password')!.toString(), 'held secrets survive the outage').to.equal('pw-version-1');
    const down = await call<ErrorBody>(agent.socket, 'POST', '/v1/containers', { id: 'c2', service: 'api' });
    expect(down.status).to.equal(503);
    expect(down.body.error.message).to.match(/^store unreachable: /);

    store.setSecret('db_password', Buffer.from('rotated-while-down'));
    await store.start(); // same port, same CA
    await ready(agent);
    await store.until(() => agent.cache.get('db_password')?.version === 2, 'converged on the version rotated while away');
    expect(agent.cache.read('db_password')!.toString()).to.equal('rotated-while-down');
    const hello = store.liveSessions()[0]!.received[0]!;
    expect(hello.body === 'hello' && hello.hello.containers).to.deep.equal([{ id: 'c1', service: 'api' }]);
  });

  it('stops for good when the store says the node is revoked: drops what it held, refuses containers, no reconnects', async () => {
    const agent = await start('n1', { zone: 'eu' });
    await ready(agent);
    expect((await call(agent.socket, 'POST', '/v1/containers', { id: 'c1', service: 'api' })).status).to.equal(201);

    store.revoke(agent.nodeId);
    await store.until(() => agent.session.state === 'revoked', 'revoked');
    expect(agent.cache.held().secrets).to.deep.equal([]);
    const sessionsAfter = store.sessions.length;
    await new Promise((r) => setTimeout(r, 700)); // several backoff periods
    expect(store.sessions.length, 'no reconnect attempts').to.equal(sessionsAfter);
    const refused = await call<ErrorBody>(agent.socket, 'POST', '/v1/containers', { id: 'c2', service: 'api' });
    expect(refused.status).to.equal(403);
    expect(refused.body.error.message).to.match(/^node revoked: /);
    expect((await call<{ session: { state: string } }>(agent.socket, 'GET', '/v1/status')).body.session.state).to.equal('revoked');
  });

  it('renews a short-lived certificate at half-life and reopens the session with it', async () => {
    store.kill();
    store = await new FakeStore({ ca: store.ca, nodeCertSeconds: 3 }).start();
    store.services.set('api', { grants: [grant('db_password', 'db')] });
    store.setSecret('db_password', Buffer.from('pw'));
    const agent = await start('n1', {});
    await ready(agent);
    expect((await call(agent.socket, 'POST', '/v1/containers', { id: 'c1', service: 'api' })).status).to.equal(201);
    const firstSerial = store.liveSessions()[0]!.certSerial;

    await store.until(() => store.renewals.length >= 2, 'two renewals', 10_000);
    await store.until(() => store.liveSessions().some((s) => s.certSerial !== firstSerial) && agent.session.state === 'ready', 'session on a renewed certificate');
    expect(store.renewals.every((id) => id === agent.nodeId)).to.equal(true);
    // Well past the first certificate's expiry, still connected and serving.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(agent.session.state).to.equal('ready');
    expect(agent.cache.read('db_password')!.toString()).to.equal('pw');
    expect(new Date(agent.status().certificate.notAfter).getTime()).to.be.greaterThan(Date.now());
  });

  it('abandons a session that never brings a snapshot and tries again', async () => {
    store.mute = true;
    const agent = await start('n1', {}, { snapshotTimeoutMs: 300 });
    await store.until(() => store.sessions.length >= 2, 'a second session after the snapshot timeout');
    expect(agent.session.status().lastError).to.match(/no snapshot from the store within 300 ms/);
    store.mute = false;
    await ready(agent);
  });

  it('answers 504 when the store never decides', async () => {
    const agent = await start('n1', { zone: 'eu' });
    await ready(agent);
    store.silent = true;
    const reply = await call<ErrorBody>(agent.socket, 'POST', '/v1/containers', { id: 'c1', service: 'api' });
    expect(reply.status).to.equal(504);
    expect(reply.body.error.code).to.equal('timeout');
    await store.until(() => store.liveSessions()[0]!.received.some((m) => m.body === 'container_stop'), 'start withdrawn');
  });

  it('refuses to start against an impostor CA and leaves no socket behind', async () => {
    const other = createClusterCa();
    const socket = join(dir, 'impostor.sock');
    const err = await rejection(
      startAgent({ store: store.address, token: formatJoinToken(certFingerprint(other.certPem), store.joinSecret), socket, log: quiet }),
    );
    expect(err.message).to.match(/presents CA [0-9a-f]{64}, but the join token expects [0-9a-f]{64}: wrong store or an impostor/);
    expect(store.joins).to.deep.equal([]);
    expect(await access(socket).then(() => true, () => false)).to.equal(false);
  });

  it('closes cleanly: the session ends at the store and the socket is removed', async () => {
    const agent = await start('n1', {});
    await ready(agent);
    await agent.close();
    await store.until(() => store.liveSessions().length === 0, 'session ended at the store');
    expect(await access(agent.socket).then(() => true, () => false)).to.equal(false);
  });
});
