/**
 * An agent reconnecting to a restarted store (the embedded engine, a real
 * `hush store` process) resumes from the revision it holds: the store sends
 * a delta over what it holds, not every value again. A store restored from
 * an older backup has not reached the agent's revision: it sends a snapshot,
 * and the agent ends holding exactly what the restored store has.
 */
import { expect } from 'chai';
import { cp, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, startAgentProcess, type AgentProcess } from '../helpers/agent-process.js';
import { call, closeClients } from '../helpers/http.js';
import { hushOk, startStoreProcess, stopProcess, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

interface Held {
  revision: number;
  secrets: { name: string; version: number }[];
}

describe('agent session resume against a restarted store (embedded engine)', function () {
  this.timeout(120_000);
  let dir: string;
  let store: StoreProcess | undefined;
  let agent: AgentProcess | undefined;

  afterEach(async () => {
    closeClients();
    await agent?.stop('SIGKILL');
    if (store) await stopProcess(store, 'SIGKILL');
    await removeDir(dir);
  });

  it('a restarted store resumes the agent with a delta; one restored from an older backup sends a snapshot, and the agent then holds exactly the backup\'s secrets', async () => {
    dir = await tempDir('hush-resume-');
    const data = join(dir, 'data');
    const socket = join(dir, 'admin.sock');
    const port = await freePort();
    const start = async () => {
      store = await startStoreProcess({ data, socket, home: dir, extraArgs: ['--listen', `127.0.0.1:${port}`, '--admin', ''] });
    };
    const cli = (args: string[], input?: string) => hushOk(args, { env: { HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir }, input }).stdout.trim();
    const held = async () => (await call<Held>(agent!.socket, 'GET', '/v1/debug/held')).body;
    const heldPairs = async () => (await held()).secrets.map((s) => [s.name, s.version]);
    const metric = async (line: RegExp) => line.test((await call(socket, 'GET', '/metrics')).text);
    const readyOnStore = () => {
      const nodes = JSON.parse(cli(['node', 'ls', '--format', 'json'])) as { name: string; status: { state: string; ackedRevision?: number } }[];
      return nodes.some((n) => n.name === 'n1' && n.status.state === 'ready' && (n.status.ackedRevision ?? 0) > 0);
    };

    await start();
    cli(['secret', 'create', 'one', '-'], 'one v1');
    cli(['secret', 'create', 'two', '-'], 'two v1');
    cli(['service', 'create', 'web', '--secret', 'one', '--secret', 'two']);
    agent = await startAgentProcess({ store: `127.0.0.1:${port}`, token: cli(['join-token']), name: 'n1', socket: join(dir, 'agent.sock') });
    const reply = await call<{ mount: string }>(agent.socket, 'POST', '/v1/containers', { id: 'c1', service: 'web' });
    expect(reply.status, reply.text).to.equal(201);
    const mount = reply.body.mount;
    expect(await readFile(join(mount, 'one'), 'utf8')).to.equal('one v1');

    // A backup of the store as it is now, taken while it is stopped.
    await stopProcess(store!);
    await cp(data, join(dir, 'backup'), { recursive: true });

    // Restarted on the same data: the agent resumes; nothing changed, so no value is sent again.
    await start();
    await until(() => readyOnStore(), 'the agent back on the restarted store');
    expect(await metric(/^hush_sessions_resumed_total\{kind="delta"\} 1$/m)).to.equal(true);
    expect(await metric(/^hush_node_pushed_secret_versions_total 0$/m)).to.equal(true);

    // Changes the backup will not have: a rotation and a new secret granted to the service.
    cli(['secret', 'rotate', 'one', '-'], 'one v2');
    cli(['secret', 'create', 'three', '-'], 'three v1');
    cli(['service', 'update', 'web', '--secret-add', 'three']);
    await until(async () => JSON.stringify(await heldPairs()) === JSON.stringify([['one', 2], ['three', 1], ['two', 1]]), 'the agent holding the changes');
    const revisionBeforeRestore = (await held()).revision;

    // Restored from the backup: the store has not reached the agent's revision, so it cannot take the agent's word for a base.
    await stopProcess(store!, 'SIGKILL');
    await rm(data, { recursive: true, force: true });
    await cp(join(dir, 'backup'), data, { recursive: true });
    await start();
    await until(async () => JSON.stringify(await heldPairs()) === JSON.stringify([['one', 1], ['two', 1]]), 'the agent holding exactly the restored secrets');
    expect((await held()).revision).to.be.below(revisionBeforeRestore);
    expect(await metric(/^hush_sessions_resumed_total\{kind="snapshot"\} 1$/m)).to.equal(true);
    expect(await metric(/^hush_sessions_resumed_total\{kind="delta"\} [1-9]/m)).to.equal(false);
    expect(await readFile(join(mount, 'one'), 'utf8')).to.equal('one v1');
    expect((await readdir(mount)).sort()).to.deep.equal(['one', 'two']);
  });
});
