/**
 * Losing an agent under read load, as an operator would meet it: a store
 * process, an agent process joined with its name-bound token on a name an
 * admin labelled, and `hush run` containers (one as root, one as uid 1000)
 * reading their secret through real FUSE mounts in a loop.
 *
 * - kill -9 of the agent: the containers' reads fail with a clear error
 *   (the FUSE connection is gone) and never return a value again, not even
 *   the one they had (a rotation made while the agent is down must never be
 *   hidden behind old bytes); the restarted agent (same name, same token,
 *   same mounts directory) removes the dead mounts, rejoins under its name
 *   with its admin labels, and a new container of the constrained service
 *   reads the latest version.
 * - `hush node rm` of a node while its containers read: their reads stop
 *   returning the value. The time from the command to the first failed read
 *   is printed for docs/reliability.md (never asserted).
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { freePort, mountsDirOf, startAgentProcess, type AgentProcess } from '../helpers/agent-process.js';
import { call, closeClients } from '../helpers/http.js';
import { hushOk, startHush, startStoreProcess, stopProcess, type Running, type StoreProcess } from '../helpers/hush-process.js';
import { hushMountsUnder } from '../helpers/mounts.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

interface NodeJson {
  id: string;
  name: string;
  labels: Record<string, string>;
  status: { state: string };
}

/** One read per line: "read VALUE" or "failed ERROR". */
const LOOP = 'while :; do if v=$(cat /run/secrets/db 2>&1); then echo "read $v"; else echo "failed $v"; fi; sleep 0.05; done';

describe('losing an agent under read load (store and agent processes, hush run, real FUSE)', function () {
  this.timeout(120_000);
  let dir: string;
  let socket: string;
  let port: number;
  let store: StoreProcess | undefined;
  const agents: AgentProcess[] = [];
  const readers: Running[] = [];
  const values: string[] = [];

  const cli = (args: string[], input?: string) => hushOk(args, { env: { HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir }, input }).stdout.trim();
  const rotate = () => {
    values.push(`v${values.length + 1}-${randomBytes(8).toString('hex')}`);
    cli(values.length === 1 ? ['secret', 'create', 'db', '-'] : ['secret', 'rotate', 'db', '-'], values.at(-1));
  };
  const nodes = () => JSON.parse(cli(['node', 'ls', '--format', 'json'])) as NodeJson[];
  const startAgent = async (name: string, token: string, agentSocket: string) => {
    const agent = await startAgentProcess({ store: `127.0.0.1:${port}`, token, name, socket: agentSocket });
    agents.push(agent);
    return agent;
  };
  const startReader = async (agent: AgentProcess, user?: string) => {
    const reader = startHush(['run', '--service', 'api', '--agent-socket', agent.socket, ...(user ? ['--user', user] : []), '--', 'sh', '-c', LOOP], { HUSH_HOME: dir, HUSH_HOST: '' });
    readers.push(reader);
    await until(() => reads(reader).length > 0, 'the container to read', 30_000, 50).catch((err: Error) => {
      throw new Error(`${err.message}\n${reader.stderr()}\n${agent.output()}`);
    });
    return reader;
  };
  const reads = (reader: Running) => {
    const text = reader.stdout().toString();
    return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean); // whole lines only
  };
  /**
   * Once a read has failed, none may succeed again: whatever it would return
   * is no longer what the store holds as current. Returns the failures.
   */
  const failedForGood = (reader: Running) => {
    const lines = reads(reader);
    const first = lines.findIndex((l) => l.startsWith('failed'));
    expect(first, 'a failed read').to.be.at.least(0);
    const after = lines.slice(first);
    expect(after.filter((l) => !l.startsWith('failed')), 'reads that succeeded after one had failed').to.deep.equal([]);
    for (const line of lines.slice(0, first)) expect(values, 'reads before the failure are values that were written').to.include(line.slice('read '.length));
    return after;
  };

  beforeEach(async () => {
    dir = await tempDir('hush-agent-loss-');
    socket = join(dir, 'admin.sock');
    port = await freePort();
    store = await startStoreProcess({ data: join(dir, 'data'), socket, home: dir, extraArgs: ['--listen', `127.0.0.1:${port}`, '--admin', ''] });
    values.length = 0;
    rotate();
    cli(['service', 'create', 'api', '--secret', 'db,mode=0444', '--constraint', 'node.labels.zone==eu']);
  });
  afterEach(async () => {
    closeClients();
    for (const reader of readers.splice(0)) {
      reader.child.kill('SIGTERM');
      await reader.finished;
    }
    for (const agent of agents.splice(0)) await agent.stop('SIGKILL');
    if (store) await stopProcess(store, 'SIGKILL');
    store = undefined;
    await removeDir(dir);
  });

  it('kill -9 of the agent: reads fail and stay failed (never old bytes); the agent restarts on its name-bound token, clears the dead mounts, rejoins with its labels and serves the latest version', async () => {
    const nameToken = cli(['join-token', '--node', 'n1']);
    cli(['node', 'label', 'n1', 'zone=eu']);
    const agentSocket = join(dir, 'n1.sock');
    const first = await startAgent('n1', nameToken, agentSocket);
    const asRoot = await startReader(first);
    const asUser = await startReader(first, '1000');
    const mounts = mountsDirOf(first);
    expect(await hushMountsUnder(mounts)).to.have.length(2);
    const firstId = nodes().find((n) => n.name === 'n1')!.id;

    // Not agent.stop(): that also unmounts what the agent left, which is the restarted agent's job here.
    first.child.kill('SIGKILL');
    await first.exited;
    rotate(); // while the agent is down: a read of the old value from now on would be stale
    for (const reader of [asRoot, asUser]) {
      await until(() => reads(reader).some((l) => l.startsWith('failed')), 'reads to fail once the agent is gone', 20_000, 50);
    }
    // Several failures in a row, so "stays failed" is seen, not assumed.
    const marks = [asRoot, asUser].map((r) => reads(r).length);
    await until(() => [asRoot, asUser].every((r, i) => reads(r).length >= marks[i]! + 5), 'more reads after the first failure', 20_000, 50);
    for (const reader of [asRoot, asUser]) {
      const failures = failedForGood(reader);
      expect(new Set(failures.map((l) => l.replace(/^failed cat: [^:]+: /, ''))), 'the error').to.deep.equal(new Set(['Transport endpoint is not connected']));
    }
    expect(await hushMountsUnder(mounts), 'the dead mounts are still in the table until an agent starts').to.have.length(2);

    const second = await startAgent('n1', nameToken, agentSocket);
    expect(await hushMountsUnder(mounts), 'the restarted agent removed its predecessor\'s dead mounts').to.deep.equal([]);
    const named = nodes().filter((n) => n.name === 'n1');
    expect(named.map((n) => [n.labels, n.status.state]), 'one node holds the name, with its admin labels').to.deep.equal([[{ zone: 'eu' }, 'ready']]);
    expect(named[0]!.id, 'a new node identity (the agent keeps nothing on disk)').to.not.equal(firstId);

    // The old containers' mounts died with the old agent: they keep failing, never read the old value.
    const marksAfter = [asRoot, asUser].map((r) => reads(r).length);
    await until(() => [asRoot, asUser].every((r, i) => reads(r).length >= marksAfter[i]! + 3), 'reads of the old containers after the restart', 20_000, 50);
    for (const reader of [asRoot, asUser]) failedForGood(reader);

    // A new container of the constrained service: served, the version made while the agent was down.
    const fresh = await startReader(second, '1000');
    await until(() => reads(fresh).length >= 3, 'reads of the new container', 20_000, 50);
    expect(new Set(reads(fresh))).to.deep.equal(new Set([`read ${values.at(-1)}`]));
    expect(await hushMountsUnder(mounts)).to.have.length(1);
  });

  it('hush node rm while containers read: their reads stop returning the value (time printed for the figures)', async () => {
    const token = cli(['join-token']);
    const agent = await startAgent('gone', token, join(dir, 'gone.sock'));
    cli(['node', 'label', 'gone', 'zone=eu']);
    const readersOfNode = [await startReader(agent), await startReader(agent, '1000')];
    const mounts = mountsDirOf(agent);

    const removedAt = Date.now();
    cli(['node', 'rm', 'gone']);
    const returnedAfterMs = Date.now() - removedAt;
    const firstFailure: number[] = [];
    for (const reader of readersOfNode) {
      await until(() => reads(reader).some((l) => l.startsWith('failed')), 'reads to fail after the node was removed', 30_000, 20);
      firstFailure.push(Date.now() - removedAt);
    }
    const marks = readersOfNode.map((r) => reads(r).length);
    await until(() => readersOfNode.every((r, i) => reads(r).length >= marks[i]! + 3), 'more reads after the removal', 20_000, 50);
    for (const reader of readersOfNode) {
      const failures = failedForGood(reader);
      expect(new Set(failures.map((l) => l.replace(/^failed cat: [^:]+: /, ''))), 'the error: the file is gone').to.deep.equal(new Set(['No such file or directory']));
    }
    // The mounts stay (the containers still hold them) but are empty: the revoked agent dropped every value.
    expect(await hushMountsUnder(mounts)).to.have.length(2);
    const held = (await call<{ secrets: unknown[] }>(agent.socket, 'GET', '/v1/debug/held')).body;
    expect(held.secrets, 'the agent holds nothing').to.deep.equal([]);
    const containers = (await call<{ secrets: string[] }[]>(agent.socket, 'GET', '/v1/containers')).body;
    expect(containers.map((c) => c.secrets)).to.deep.equal([[], []]);
    expect((await call<{ session: { state: string } }>(agent.socket, 'GET', '/v1/status')).body.session.state).to.equal('revoked');
    expect(nodes().map((n) => n.name)).to.not.include('gone');
    console.log(`      node rm: first failed read after ${Math.min(...firstFailure)} / ${Math.max(...firstFailure)} ms (a read every 50 ms); the command itself returned after ${returnedAfterMs} ms`);
  });
});
