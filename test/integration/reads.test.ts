/**
 * Who read what, end to end: a store process, a real agent with kernel FUSE
 * mounts read by a real child process, the real CLI. A container reads v1
 * and keeps it open, the secret rotates, the same container reads v2: the
 * store reports v1 still held (an older version than the current one) and
 * v2 read; once the file is closed and the kernel forgets the old node, v1
 * shows released. A container that never reads does not appear. A node that
 * reports what it was never given is ignored, a malformed report dropped,
 * and a removed node's reads go. No value anywhere in what is reported.
 */
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as pki from '../../src/pki/index.js';
import type { ReadRecord } from '../../src/rotation/index.js';
import { nodeServiceClient, STORE_TLS_NAME, type JoinResponse, type StoreMessage, type WireReadEntry } from '../../src/protocol/index.js';
import { freePort, startAgentProcess, type AgentProcess } from '../helpers/agent-process.js';
import { call, closeClients } from '../helpers/http.js';
import { hush, hushOk, startStoreProcess, stopProcess, waitForCluster, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const RECORD_KEYS = ['node', 'nodeName', 'container', 'service', 'secret', 'version', 'firstReadAt', 'state', 'releasedAt', 'reportedAt'];

describe('who read what (store process, an agent with FUSE mounts, the CLI)', function () {
  this.timeout(120_000);
  let dir: string;
  let socket: string;
  let store: StoreProcess | undefined;
  let agent: AgentProcess | undefined;
  let adminUrl: string;
  const children: ChildProcess[] = [];
  const v1 = `pw1-${randomBytes(12).toString('hex')}`;
  const v2 = `pw2-${randomBytes(12).toString('hex')}`;
  const env = () => ({ HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir });

  const cli = (args: string[], input?: string) => hushOk(args, { env: env(), input }).stdout.trim();
  const reads = (secret: string): ReadRecord[] => JSON.parse(cli(['audit', '--reads', '--secret', secret, '--format', 'json'])) as ReadRecord[];
  const readOf = (records: ReadRecord[], container: string, version: number) => records.find((r) => r.container === container && r.version === version);

  before(async () => {
    dir = await tempDir('hush-reads-');
    socket = join(dir, 'admin.sock');
    const port = await freePort();
    store = await startStoreProcess({ data: join(dir, 'data'), socket, home: dir, extraArgs: ['--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0'] });
    adminUrl = (await waitForCluster(dir)).adminAddress;
    cli(['secret', 'create', 'db_password', '-'], v1);
    cli(['secret', 'create', 'api_key', '-'], 'key-never-read');
    cli(['service', 'create', 'api', '--secret', 'db_password,target=db', '--secret', 'api_key']);
    agent = await startAgentProcess({ store: `127.0.0.1:${port}`, token: cli(['join-token']), name: 'node-a', socket: join(dir, 'agent.sock') });
  });
  after(async () => {
    closeClients();
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await agent?.stop('SIGTERM');
    if (store) await stopProcess(store, 'SIGKILL');
    await removeDir(dir);
  });

  it('reports v1 held by an open file and v2 read after a rotation, v1 released once the kernel forgets it; a container that never reads is absent', async () => {
    const holderStart = await call<{ mount: string }>(agent!.socket, 'POST', '/v1/containers', { id: 'c-holder', service: 'api' });
    expect(holderStart.status, holderStart.text).to.equal(201);
    const idle = await call(agent!.socket, 'POST', '/v1/containers', { id: 'c-idle', service: 'api' });
    expect(idle.status, idle.text).to.equal(201);
    const mount = holderStart.body.mount;

    // The container's process: opens v1 and keeps it open, reads the name again after the rotation, then closes v1.
    const script = 'exec 3<"$1/db"; echo opened; read go; cat "$1/db"; echo; echo second; read go; exec 3<&-; echo closed; read go; echo done';
    const holder = spawn('sh', ['-c', script, 'holder', mount], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(holder);
    let out = '';
    holder.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    await until(() => out.includes('opened'), 'the holder to open v1');

    const rotated = hush(['secret', 'rotate', 'db_password', '-', '--wait', '--timeout', '30'], { env: env(), input: v2 });
    expect(rotated.status, rotated.stderr).to.equal(0);
    holder.stdin!.write('go\n');
    await until(() => out.includes('second'), 'the holder to read the name again');
    expect(out).to.include(v2);

    await until(() => {
      const r = reads('db_password');
      return readOf(r, 'c-holder', 1)?.state === 'held' && readOf(r, 'c-holder', 2) !== undefined;
    }, 'the store to hear of both reads', 30_000, 200);
    const both = reads('db_password');
    const old = readOf(both, 'c-holder', 1)!;
    const current = readOf(both, 'c-holder', 2)!;
    expect(old).to.include({ nodeName: 'node-a', service: 'api', secret: 'db_password', state: 'held', releasedAt: null });
    expect(current).to.include({ nodeName: 'node-a', service: 'api', state: 'held' });
    expect(Date.parse(current.firstReadAt)).to.be.at.least(Date.parse(old.firstReadAt));
    // The container that never read anything, and the secret nobody read, are nowhere.
    expect(both.map((r) => r.container)).to.not.include('c-idle');
    expect(reads('api_key')).to.deep.equal([]);

    // secret inspect: readers per version, and who still holds an older version than the current one.
    type Detail = { version: number; versions: { version: number; readers: ReadRecord[] }[]; olderVersionHolders: ReadRecord[] };
    const inspect = () => (JSON.parse(cli(['secret', 'inspect', 'db_password'])) as Detail[])[0]!;
    const detail = inspect();
    expect(detail.version).to.equal(2);
    expect(detail.olderVersionHolders.map((r) => [r.container, r.version, r.state])).to.deep.equal([['c-holder', 1, 'held']]);
    expect(detail.versions.find((v) => v.version === 1)!.readers.map((r) => r.container)).to.deep.equal(['c-holder']);
    expect(detail.versions.find((v) => v.version === 2)!.readers.map((r) => r.container)).to.deep.equal(['c-holder']);
    // The table names node, container and state.
    expect(cli(['audit', '--reads'])).to.match(/^db_password +1 +node-a +c-holder +api +\S+ +held$/m);

    // Close v1; the kernel forgets the unused node when its inode is reclaimed (drop_caches reclaims it now).
    holder.stdin!.write('go\n');
    await until(() => out.includes('closed'), 'the holder to close v1');
    await until(async () => {
      await writeFile('/proc/sys/vm/drop_caches', '2');
      return readOf(reads('db_password'), 'c-holder', 1)?.state === 'released';
    }, 'v1 to show released', 30_000, 500);
    const released = reads('db_password');
    const gone = readOf(released, 'c-holder', 1)!;
    expect(Date.parse(gone.releasedAt!)).to.be.at.least(Date.parse(gone.firstReadAt));
    expect(readOf(released, 'c-holder', 2)?.state, 'the current version is still held').to.equal('held');
    expect(inspect().olderVersionHolders).to.deep.equal([]);

    holder.stdin!.end('go\n');
    await once(holder, 'close');
    expect(out.trimEnd().endsWith('done')).to.equal(true);

    // A stopped container's versions show released at its stop (its last report goes before the stop).
    expect((await call(agent!.socket, 'DELETE', '/v1/containers/c-holder')).status).to.equal(204);
    await until(() => readOf(reads('db_password'), 'c-holder', 2)?.state === 'released', 'v2 released at the stop', 30_000, 200);

    // No value in any report, any answer, or any log; only the documented fields.
    const everything = cli(['audit', '--reads', '--format', 'json']) + cli(['secret', 'inspect', 'db_password']) + cli(['audit', '--reads']);
    for (const value of [v1, v2, 'key-never-read']) {
      expect(everything).to.not.include(value);
      expect(store!.output()).to.not.include(value);
      expect(agent!.output()).to.not.include(value);
    }
    // Positive controls: each search reads real text (the answers name the secret; each process logged its start).
    expect(everything).to.include('db_password');
    expect(store!.output()).to.include('store ready');
    expect(agent!.output()).to.include('joined the cluster');
    for (const record of JSON.parse(cli(['audit', '--reads', '--format', 'json'])) as ReadRecord[]) expect(RECORD_KEYS).to.include.members(Object.keys(record));
  });

  it('answers an auditor on HTTPS; refuses bad queries and --secret without --reads', async () => {
    const auditorDir = join(dir, 'auditor');
    cli(['cert', 'create', 'alice', '--role', 'auditor', '--out', auditorDir]);
    const asAuditor = hush(['audit', '--reads', '--format', 'json'], { env: { HUSH_HOME: auditorDir, HUSH_HOST: adminUrl } });
    expect(asAuditor.status, asAuditor.stderr).to.equal(0);
    expect((JSON.parse(asAuditor.stdout) as ReadRecord[]).some((r) => r.container === 'c-holder')).to.equal(true);

    const badName = await call<{ error: { message: string } }>(socket, 'GET', '/v1/audit/reads?secret=..%2Fx');
    expect(badName.status).to.equal(400);
    expect(badName.body.error.message).to.match(/invalid secret name/);
    const unknownQuery = await call(socket, 'GET', '/v1/audit/reads?node=x');
    expect(unknownQuery.status).to.equal(400);
    const usage = hush(['audit', '--secret', 'db_password'], { env: env() });
    expect(usage.status).to.equal(2);
    expect(usage.stderr).to.match(/^error: --secret goes with --reads/);
  });

  it('ignores reads of what a node was not given, drops a malformed report, and forgets a removed node', async () => {
    const address = (await waitForCluster(dir)).nodeAddress;
    const caPem = await readFile(join(dir, 'ca.pem'), 'utf8');
    const key = pki.generateKeyPair().keyPem;
    const joinClient = new (nodeServiceClient())(address, grpc.credentials.createSsl(Buffer.from(caPem)), { 'grpc.ssl_target_name_override': STORE_TLS_NAME }) as unknown as Record<string, (...a: unknown[]) => unknown>;
    const joined = await new Promise<JoinResponse>((resolve, reject) =>
      joinClient.Join({ token: cli(['join-token']), csr_pem: pki.createCsr(key, 'ignored'), name: 'node-fake', hostname: 'fake', labels: {} }, (err: grpc.ServiceError | null, reply: JoinResponse) =>
        err ? reject(err) : resolve(reply),
      ),
    );
    const client = new (nodeServiceClient())(address, grpc.credentials.createSsl(Buffer.from(caPem), Buffer.from(key), Buffer.from(joined.certificate_pem)), {
      'grpc.ssl_target_name_override': STORE_TLS_NAME,
    }) as unknown as { Session(): grpc.ClientDuplexStream<unknown, StoreMessage>; close(): void };
    const stream = client.Session();
    stream.on('error', () => {});
    const snapshot = new Promise<StoreMessage>((resolve) => stream.once('data', resolve));
    stream.write({ body: 'hello', hello: { containers: [{ id: 'c-fake', service: 'api' }], last_revision: 0 } });
    const first = await snapshot;
    expect(first.body).to.equal('snapshot');
    const held = first.body === 'snapshot' ? first.snapshot.secrets.find((s) => s.name === 'db_password')!.version : 0;
    expect(held).to.equal(2);

    const now = Date.now();
    const entry = (over: Partial<WireReadEntry>): WireReadEntry => ({ container_id: 'c-fake', secret: 'db_password', version: 2, first_read_at_ms: now, released_at_ms: 0, ...over });
    const send = (entries: WireReadEntry[]) => stream.write({ body: 'read_report', read_report: { entries } });
    // Not given: another container, a secret not sent to this node, a version newer than the one sent.
    send([entry({ container_id: 'c-other' }), entry({ secret: 'nobody_has_this' }), entry({ version: 3 })]);
    // Malformed (each dropped whole, with its good entry): a bad name, no time, a release before the read, a time far ahead, twice the same, too many.
    for (const bad of [
      [entry({ secret: 'a/b' })],
      [entry({ first_read_at_ms: 0 })],
      [entry({ released_at_ms: now - 1000 })],
      [entry({ first_read_at_ms: now + 7 * 24 * 3600 * 1000 })],
      [entry({}), entry({})],
      Array.from({ length: 257 }, (_, i) => entry({ version: 1 + (i % 2), container_id: `c-${i}` })),
    ]) send([...bad, entry({ container_id: 'c-fake', version: 1 })]);
    // The positive control, last: once it is in, every report before it was judged (one stream, in order).
    send([entry({})]);
    await until(() => reads('db_password').some((r) => r.container === 'c-fake'), 'the good entry to be recorded', 30_000, 200);
    const fake = reads('db_password').filter((r) => r.nodeName === 'node-fake');
    expect(fake.map((r) => [r.container, r.version, r.state])).to.deep.equal([['c-fake', 2, 'held']]);
    expect(reads('nobody_has_this')).to.deep.equal([]);
    const logs = store!.output();
    expect(logs).to.include('node reported reads of containers or secret versions it was not given; ignored');
    expect(logs.match(/node sent an invalid read report; ignored/g)?.length).to.equal(6);

    stream.cancel();
    client.close();
    (joinClient as unknown as grpc.Client).close();
    cli(['node', 'rm', 'node-fake']);
    await until(() => !reads('db_password').some((r) => r.container === 'c-fake'), 'the removed node\'s reads to go', 30_000, 200);
    expect(reads('db_password').some((r) => r.nodeName === 'node-a')).to.equal(true);
  });
});
