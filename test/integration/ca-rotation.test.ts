/**
 * Cluster CA rotation with real processes: `hush store` (node and admin
 * HTTPS listeners), `hush agent` processes with FUSE mounts, the CLI. While
 * a reader process keeps reading a secret from a container's mount, the CA
 * is rotated: the agent keeps its session and receives rotations, moves to
 * the new CA at its next renewal, tokens and admin bundles of the old CA
 * work until it is retired, and are refused afterwards.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseJoinToken } from '../../src/pki/index.js';
import { freePort, runAgentToExit, startAgentProcess, type AgentProcess } from '../helpers/agent-process.js';
import { call, closeClients } from '../helpers/http.js';
import { httpsCall } from '../helpers/https.js';
import { hush, hushOk, startStoreProcess, stopProcess, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

interface CaStatusJson {
  fingerprint: string;
  rotation?: { moved: number; total: number; nodes: { name: string; moved: boolean }[] };
}
interface AgentStatusJson {
  session: { state: string };
  certificate: { ca: string; notAfter: string };
}

describe('CA rotation (store, agents with FUSE, admin clients)', function () {
  this.timeout(180_000);
  let dir: string;
  let socket: string;
  let nodePort: number;
  let adminUrl: string;
  let store: StoreProcess | undefined;
  let reader: ChildProcess | undefined;
  const agents: AgentProcess[] = [];

  const cli = (args: string[], input?: string) => hushOk(args, { env: { HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir }, input }).stdout.trim();
  const caStatus = () => JSON.parse(cli(['ca', 'status', '--format', 'json'])) as CaStatusJson;
  const agentStatus = async (a: AgentProcess) => (await call<AgentStatusJson>(a.socket, 'GET', '/v1/status')).body;
  const startAgent = async (name: string, token: string) => {
    const a = await startAgentProcess({ store: `127.0.0.1:${nodePort}`, token, name, socket: join(dir, `${name}.sock`) });
    agents.push(a);
    return a;
  };

  before(async () => {
    dir = await tempDir();
    socket = join(dir, 'admin.sock');
    nodePort = await freePort();
    const adminPort = await freePort();
    adminUrl = `https://127.0.0.1:${adminPort}`;
    // Node certificates of 30 s: agents renew every ~15 s, so the rotation completes within the test.
    store = await startStoreProcess({
      data: join(dir, 'data'),
      socket,
      home: dir,
      extraArgs: ['--listen', `127.0.0.1:${nodePort}`, '--admin', `127.0.0.1:${adminPort}`, '--node-cert-ttl', '30'],
    });
  });

  after(async () => {
    reader?.kill('SIGKILL');
    for (const a of agents) await a.stop('SIGKILL').catch(() => {});
    if (store) await stopProcess(store, 'SIGKILL');
    closeClients();
    await removeDir(dir);
  });

  it('moves agents and admin clients to a new CA with no failed read, then refuses what only the old CA vouches for', async () => {
    cli(['secret', 'create', 'db_password', '-'], 'v1');
    cli(['service', 'create', 'api', '--secret', 'db_password']);
    const oldToken = cli(['join-token']);
    const oldNameToken = cli(['join-token', '--node', 'web-2']);
    cli(['cert', 'create', 'alice', '--role', 'operator', '--out', join(dir, 'alice')]);
    const oldCa = caStatus().fingerprint;
    expect(parseJoinToken(oldToken).caFingerprint).to.equal(oldCa);

    // web-0 is frozen (SIGSTOP) before the rotation: a slow node that holds the transition open until it resumes.
    const web0 = await startAgent('web-0', oldToken);
    web0.child.kill('SIGSTOP');
    const web1 = await startAgent('web-1', oldToken);
    const started = await call<{ mount: string }>(web1.socket, 'POST', '/v1/containers', { id: 'c-1', service: 'api' });
    expect(started.status, started.text).to.equal(201);
    const file = join(started.body.mount, 'db_password');

    // A reader in its own process (never the agent's): one line per read, for the whole rotation.
    let lines = '';
    reader = spawn(process.execPath, ['-e', `const fs=require('fs');setInterval(()=>{try{process.stdout.write('ok '+fs.readFileSync(${JSON.stringify(file)},'utf8')+'\\n')}catch(e){process.stdout.write('err '+e.code+'\\n')}},25)`], { stdio: ['ignore', 'pipe', 'inherit'] });
    reader.stdout!.on('data', (c: Buffer) => (lines += c.toString()));
    await until(() => lines.includes('ok v1'), 'the reader to read v1');

    const rotated = hush(['ca', 'rotate'], { env: { HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir } });
    expect(rotated.status, rotated.stderr).to.equal(0);
    expect(rotated.stdout).to.match(/CA rotation started: new CA [0-9a-f]{64}/);
    // It names what operators must refresh: the admin bundle, the cluster-wide token, the name-bound token.
    expect(rotated.stdout).to.include('hush cert renew alice --out DIR');
    expect(rotated.stdout).to.include('hush join-token\n');
    expect(rotated.stdout).to.include('hush join-token --node web-2');
    const again = hush(['ca', 'rotate'], { env: { HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir } });
    expect(again.status).to.equal(1);
    expect(again.stderr).to.match(/^error: a CA rotation is already running/);

    const during = caStatus();
    expect(during.fingerprint).not.to.equal(oldCa);
    expect(during.rotation).to.not.equal(undefined);
    const newToken = cli(['join-token']);
    expect(parseJoinToken(newToken).caFingerprint, 'new tokens carry the new fingerprint').to.equal(during.fingerprint);

    // During the transition: the old bundle still works over HTTPS, old tokens (cluster-wide and name-bound) still join.
    expect((await httpsCall(adminUrl, join(dir, 'alice'), 'GET', '/v1/secrets')).status).to.equal(200);
    const web2 = await startAgent('web-2', oldNameToken);
    expect((await agentStatus(web2)).certificate.ca, 'an agent joining with an old token trusts the new CA').to.equal(during.fingerprint);
    const web3 = await startAgent('web-3', newToken);
    expect((await agentStatus(web3)).certificate.ca).to.equal(during.fingerprint);

    // web-1 keeps receiving, and moves at its next renewal.
    cli(['secret', 'rotate', 'db_password', '-'], 'v2');
    await until(() => lines.includes('ok v2'), 'the reader to read v2 during the transition');
    await until(async () => (await agentStatus(web1)).certificate.ca === during.fingerprint, 'web-1 to renew onto the new CA', 30_000);

    // Not retired while a node still holds only an old certificate...
    const waiting = caStatus().rotation!;
    expect(waiting.nodes.filter((n) => !n.moved).map((n) => n.name)).to.deep.equal(['web-0']);
    expect([waiting.moved, waiting.total]).to.deep.equal([3, 4]);
    expect((await httpsCall(adminUrl, join(dir, 'alice'), 'GET', '/v1/secrets')).status, 'the old bundle still works').to.equal(200);
    // ...and retired once every node holds a new certificate (web-0 renews when it resumes).
    web0.child.kill('SIGCONT');
    await until(() => caStatus().rotation === undefined, 'the previous CA to be retired', 45_000);
    expect((await agentStatus(web0)).certificate.ca).to.equal(during.fingerprint);
    cli(['secret', 'rotate', 'db_password', '-'], 'v3');
    await until(() => lines.includes('ok v3'), 'the reader to read v3 after retirement');
    expect((await agentStatus(web1)).session.state).to.equal('ready');

    reader.kill('SIGKILL');
    const reads = lines.trim().split('\n');
    expect(reads.filter((l) => !l.startsWith('ok ')), 'no failed read during the rotation').to.deep.equal([]);
    expect(reads.length).to.be.greaterThan(20);

    // After retirement: the old admin bundle and old tokens are refused; the store's own HUSH_HOME moved.
    const refused = await httpsCall(adminUrl, join(dir, 'alice'), 'GET', '/v1/secrets').then(
      (r) => `status ${r.status}`,
      (err: Error) => err.message,
    );
    expect(refused).to.match(/certificate|self.signed|issuer|socket hang up|ECONNRESET/i);
    const oldJoin = await runAgentToExit({ store: `127.0.0.1:${nodePort}`, token: oldToken, name: 'late', socket: join(dir, 'late.sock') });
    expect(oldJoin.code, oldJoin.output).to.equal(1);
    expect(oldJoin.output).to.include(`but the join token expects ${oldCa}`);
    expect(await readFile(join(dir, 'ca.pem'), 'utf8')).to.not.equal('');
    expect((await httpsCall(adminUrl, dir, 'GET', '/v1/ca')).body).to.deep.equal({ fingerprint: during.fingerprint });

    // A renewed admin bundle works again.
    cli(['cert', 'renew', 'alice', '--out', join(dir, 'alice-renewed')]);
    expect((await httpsCall(adminUrl, join(dir, 'alice-renewed'), 'GET', '/v1/secrets')).status).to.equal(200);
  });
});
