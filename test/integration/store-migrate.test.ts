/**
 * `hush store migrate`: an embedded store, written through the real CLI,
 * copied into an empty etcd prefix; a replica started on that prefix with
 * the same key file serves the same secrets (values checked through an
 * agent's FUSE mount), services and CA. A non-empty prefix is refused and
 * left as it was.
 */
import { expect } from 'chai';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { freePort, startAgentProcess, type AgentProcess } from '../helpers/agent-process.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js';
import { call, closeClients } from '../helpers/http.js';
import { hush, hushOk, startStoreProcess, stopProcess, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

describe('hush store migrate: embedded store to etcd', function () {
  this.timeout(120_000);
  let etcd: EtcdCluster;
  let dir: string;
  let store: StoreProcess | undefined;
  let agent: AgentProcess | undefined;

  before(async () => {
    etcd = await startEtcdCluster(1);
  });
  after(async () => etcd?.stop());
  beforeEach(async () => {
    dir = await tempDir('hush-migrate-');
  });
  afterEach(async () => {
    closeClients();
    await agent?.stop('SIGKILL');
    agent = undefined;
    if (store) await stopProcess(store, 'SIGKILL');
    store = undefined;
    await removeDir(dir);
  });

  const envOf = (socket?: string) => ({ HUSH_HOME: join(dir, 'home'), ...(socket ? { HUSH_HOST: `unix://${socket}` } : {}) });
  const run = (args: string[], socket?: string, input?: string) => hush(args, { env: envOf(socket), input });
  const ok = (args: string[], socket?: string, input?: string) => hushOk(args, { env: envOf(socket), input }).stdout.trim();

  it('moves secrets with their versions, services, the CA and the join token; the replica on etcd serves them', async () => {
    const data = join(dir, 'embedded');
    const socket = join(dir, 'embedded.sock');
    store = await startStoreProcess({ data, socket, home: join(dir, 'home'), extraArgs: ['--listen', '127.0.0.1:0', '--admin', ''] });
    ok(['secret', 'create', 'db_password', '-'], socket, 'version one');
    ok(['secret', 'rotate', 'db_password', '-'], socket, 'version two');
    ok(['secret', 'create', 'api_key', '-'], socket, 'the api key');
    ok(['service', 'create', 'web', '--secret', 'db_password,target=db', '--secret', 'api_key,target=key'], socket);
    const token = ok(['join-token'], socket);
    const secretsBefore = JSON.parse(ok(['secret', 'ls', '--format', 'json'], socket)) as { name: string; version: number; id: string }[];
    await stopProcess(store);
    store = undefined;

    const prefix = 'migrated/';
    const migrated = ok(['store', 'migrate', '--from', data, '--etcd-endpoints', etcd.endpoints.join(','), '--etcd-prefix', prefix]);
    expect(migrated).to.match(/^migrated \d+ keys \(2 secrets, 1 services, 0 nodes\) to etcd; verified every key and value\./);

    // A replica on the prefix, with the embedded store's key file.
    const replicaData = join(dir, 'replica');
    await mkdir(replicaData, { mode: 0o700 });
    await copyFile(join(data, 'master.key'), join(replicaData, 'master.key'));
    const replicaSocket = join(dir, 'replica.sock');
    const port = await freePort();
    store = await startStoreProcess({
      data: replicaData,
      socket: replicaSocket,
      home: join(dir, 'home'),
      extraArgs: ['--backend', 'etcd', '--etcd-endpoints', etcd.endpoints.join(','), '--etcd-prefix', prefix, '--listen', `127.0.0.1:${port}`, '--admin', ''],
    });
    const secretsAfter = JSON.parse(ok(['secret', 'ls', '--format', 'json'], replicaSocket)) as { name: string; version: number; id: string }[];
    expect(secretsAfter.map((s) => [s.name, s.version, s.id]).sort()).to.deep.equal(secretsBefore.map((s) => [s.name, s.version, s.id]).sort());
    // Same CA and join secret: the token made before the migration joins an agent to the replica.
    expect(ok(['join-token'], replicaSocket)).to.equal(token);
    agent = await startAgentProcess({ store: `127.0.0.1:${port}`, token, name: 'n1', socket: join(dir, 'agent.sock') });
    const started = await call<{ mount: string }>(agent.socket, 'POST', '/v1/containers', { id: 'c1', service: 'web' });
    expect(started.status, started.text).to.equal(201);
    expect(await readFile(join(started.body.mount, 'db'), 'utf8')).to.equal('version two');
    expect(await readFile(join(started.body.mount, 'key'), 'utf8')).to.equal('the api key');
  });

  it('refuses a prefix that is not empty, and a directory that holds no store, changing nothing', async () => {
    const data = join(dir, 'embedded');
    const socket = join(dir, 'embedded.sock');
    store = await startStoreProcess({ data, socket, home: join(dir, 'home'), extraArgs: ['--listen', '127.0.0.1:0', '--admin', ''] });
    ok(['secret', 'create', 's', '-'], socket, 'x');
    await stopProcess(store);
    store = undefined;
    const client = new Etcd3({ hosts: etcd.endpoints });
    try {
      await client.put('occupied/something').value('already here');
      const refused = run(['store', 'migrate', '--from', data, '--etcd-endpoints', etcd.endpoints.join(','), '--etcd-prefix', 'occupied/']);
      expect(refused.status).to.equal(1);
      expect(refused.stderr).to.equal('error: the etcd prefix occupied/ is not empty: refusing to migrate over it (choose another --etcd-prefix, or delete that prefix if it is a failed migration)\n');
      expect((await client.getAll().prefix('occupied/').strings())).to.deep.equal({ 'occupied/something': 'already here' });

      const empty = join(dir, 'empty');
      const noStore = run(['store', 'migrate', '--from', empty, '--etcd-endpoints', etcd.endpoints.join(','), '--etcd-prefix', 'fresh/']);
      expect(noStore.status).to.equal(1);
      expect(noStore.stderr).to.equal(`error: ${empty} holds no store (no write-ahead log or snapshot)\n`);
      expect(await client.getAll().prefix('fresh/').keys()).to.deep.equal([]);

      const usage = run(['store', 'migrate', '--from', data]);
      expect(usage.status).to.equal(2);
      expect(usage.stderr).to.contain('error: give the etcd cluster with --etcd-endpoints');
    } finally {
      client.close();
    }
  });
});
