/**
 * End to end, as an operator would run it: `hush store --listen`, two
 * `hush agent` processes an admin labelled differently, and the CLI. Checks
 * who gets what, crash and restart of the store, revocation, bad tokens,
 * labels an agent claims for itself (never node.labels) and name-bound join
 * tokens, and the agent's hygiene: no plaintext of what it was not entitled
 * to anywhere in its memory, no file written anywhere.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatJoinToken, parseJoinToken } from '../../src/pki/index.js';
import { findInProcessMemory, freePort, mountsDirOf, runAgentToExit, startAgentProcess, waitForSession, type AgentProcess } from '../helpers/agent-process.js';
import { call, closeClients, type ErrorBody } from '../helpers/http.js';
import { hush, hushOk, startStoreProcess, stopProcess, type StoreProcess } from '../helpers/hush-process.js';
import { newTestCa } from '../helpers/test-ca.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

interface Held {
  revision: number;
  secrets: { name: string; version: number }[];
  services: { service: string }[];
}

describe('agent end to end (store process + two agent processes)', function () {
  this.timeout(180_000);
  let dir: string;
  let socket: string;
  let port: number;
  let store: StoreProcess | undefined;
  let token: string;
  const agents: AgentProcess[] = [];
  // Random so that finding one in a process's memory cannot be a coincidence.
  const dbValue = `db-${randomBytes(12).toString('hex')}`;
  const ungrantedValue = `ungranted-${randomBytes(12).toString('hex')}`;
  const usOnlyValue = `us-only-${randomBytes(12).toString('hex')}`;

  const cli = (args: string[], input?: string) => hushOk(args, { env: { HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir }, input }).stdout.trim();
  const startStore = (extraArgs: string[] = []) =>
    startStoreProcess({ data: join(dir, 'data'), socket, home: dir, extraArgs: ['--listen', `127.0.0.1:${port}`, '--admin', '', ...extraArgs] });
  let sockets = 0;
  /** A new socket path per agent, so an agent restarted under the same name never meets its predecessor's. */
  const agentSocket = (name: string) => join(dir, `${name}-${++sockets}.sock`);
  /**
   * Starts an agent (with the cluster-wide token unless told otherwise), then has an admin set `adminLabels`
   * on its name. `engineLabels` go on its command line: what it reports about itself.
   */
  const agent = async (
    name: string,
    adminLabels: Record<string, string>,
    extra: { strace?: { file: string; syscalls: string[] }; engineLabels?: Record<string, string>; token?: string } = {},
  ) => {
    const { engineLabels, ...rest } = extra;
    const a = await startAgentProcess({ store: `127.0.0.1:${port}`, token, name, labels: engineLabels, socket: agentSocket(name), ...rest });
    agents.push(a);
    const pairs = Object.entries(adminLabels).map(([k, v]) => `${k}=${v}`);
    if (pairs.length > 0) cli(['node', 'label', name, ...pairs]);
    return a;
  };
  /** Runs an agent expected to be refused at join. */
  const refusedJoin = (name: string, joinToken: string, engineLabels: Record<string, string> = {}) =>
    runAgentToExit({ store: `127.0.0.1:${port}`, token: joinToken, name, labels: engineLabels, socket: agentSocket(name) });
  interface NodeJson {
    id: string;
    name: string;
    labels: Record<string, string>;
    engineLabels: Record<string, string>;
    containers: { id: string }[];
    status: { state: string };
  }
  const nodeList = () => JSON.parse(cli(['node', 'ls', '--format', 'json'])) as NodeJson[];
  const held = async (a: AgentProcess) => (await call<Held>(a.socket, 'GET', '/v1/debug/held')).body;

  beforeEach(async () => {
    dir = await tempDir('hush-agent-e2e-');
    socket = join(dir, 'admin.sock');
    port = await freePort();
    store = await startStore();
    token = cli(['join-token']);
    cli(['secret', 'create', 'db_password', '-'], dbValue);
    cli(['secret', 'create', 'ungranted', '-'], ungrantedValue);
    cli(['secret', 'create', 'us_only', '-'], usOnlyValue);
    cli(['service', 'create', 'api', '--secret', 'db_password,target=db,mode=0400', '--constraint', 'node.labels.zone==eu']);
    cli(['service', 'create', 'us_api', '--secret', 'us_only', '--constraint', 'node.labels.zone==us']);
  });
  afterEach(async () => {
    closeClients();
    for (const a of agents.splice(0)) await a.stop('SIGKILL');
    if (store) await stopProcess(store, 'SIGKILL');
    store = undefined;
    await removeDir(dir);
  });

  it('gives the matching node its service’s secrets, refuses the other with the reason, and never sends an ungranted secret', async () => {
    const eu = await agent('eu1', { zone: 'eu' });
    const us = await agent('us1', { zone: 'us' });

    const allowed = await call<Record<string, unknown>>(eu.socket, 'POST', '/v1/containers', { id: 'web-1', service: 'api' });
    expect(allowed.status, allowed.text).to.equal(201);
    expect(allowed.body).to.deep.include({ id: 'web-1', service: 'api', secrets: ['db'] });

    const refused = await call<ErrorBody>(us.socket, 'POST', '/v1/containers', { id: 'web-1', service: 'api' });
    expect(refused.status, refused.text).to.equal(403);
    expect(refused.body.error.code).to.equal('forbidden');
    expect(refused.body.error.message).to.match(/zone/);

    expect((await held(eu)).secrets).to.deep.equal([{ name: 'db_password', version: 1 }]);
    expect((await held(us)).secrets).to.deep.equal([]);

    // The store's view of its nodes agrees.
    const nodes = nodeList();
    expect(nodes.map((n) => [n.name, n.labels.zone, n.containers.map((c) => c.id)]).sort()).to.deep.equal([
      ['eu1', 'eu', ['web-1']],
      ['us1', 'us', []],
    ]);

    // Rotation reaches the entitled node; stopping the last container drops the secret.
    cli(['secret', 'rotate', 'db_password', '-'], `${dbValue}-v2`);
    await until(async () => (await held(eu)).secrets[0]?.version === 2, 'rotated version on eu1');
    expect((await call(eu.socket, 'DELETE', '/v1/containers/web-1')).status).to.equal(204);
    await until(async () => (await held(eu)).secrets.length === 0, 'secret dropped after the container stopped');
  });

  it('serves the mount over the kernel protocol by default and reports who looked up which version, never a value', async () => {
    const eu = await agent('eu1', { zone: 'eu' });
    expect((await call(eu.socket, 'POST', '/v1/containers', { id: 'web-1', service: 'api' })).status).to.equal(201);
    const file = join(mountsDirOf(eu), 'web-1', 'db');
    const reader = spawnSync('cat', [file], { encoding: 'utf8' });
    expect(reader.stdout).to.equal(dbValue);
    interface Details {
      fuse: string;
      lookups: { file: string; secret: string; version: number; firstLookup: { pid: number; uid: number }; releasedAt: string | null }[];
    }
    const details = async () => (await call<Details>(eu.socket, 'GET', '/v1/containers/web-1')).body;
    await until(async () => (await details()).lookups.length === 1, 'the first lookup recorded');
    const first = await details();
    expect(first.fuse).to.equal('kernel');
    expect(first.lookups[0]).to.deep.include({ file: 'db', secret: 'db_password', version: 1, releasedAt: null });
    expect(first.lookups[0]!.firstLookup).to.deep.include({ pid: reader.pid, uid: 0 });

    cli(['secret', 'rotate', 'db_password', '-'], `${dbValue}-v2`);
    await until(async () => spawnSync('cat', [file], { encoding: 'utf8' }).stdout === `${dbValue}-v2`, 'the new version through the mount');
    await until(async () => {
      const d = await details();
      return d.lookups.length === 2 && d.lookups[0]!.releasedAt !== null;
    }, 'version 2 looked up, version 1 released by the kernel');
    const text = JSON.stringify(await details());
    expect(text).to.not.include(dbValue);
    expect(eu.output()).to.not.match(/fuse-native/);
  });

  it('holds no plaintext of secrets a node was not entitled to anywhere in the agent’s memory', async () => {
    const eu = await agent('eu1', { zone: 'eu' });
    const us = await agent('us1', { zone: 'us' });
    const marker = `container-${randomBytes(8).toString('hex')}`;
    expect((await call(eu.socket, 'POST', '/v1/containers', { id: marker, service: 'api' })).status).to.equal(201);
    expect((await call(us.socket, 'POST', '/v1/containers', { id: 'u1', service: 'us_api' })).status).to.equal(201);
    expect((await call(us.socket, 'POST', '/v1/containers', { id: 'u2', service: 'api' })).status).to.equal(403);

    const euFound = await findInProcessMemory(await eu.pid(), [Buffer.from(marker), Buffer.from(ungrantedValue), Buffer.from(usOnlyValue)]);
    // The container id is certainly in the agent's memory: proof that the search sees the heap at all.
    expect(euFound.map((f) => f.needle)).to.deep.equal([marker]);
    const usFound = await findInProcessMemory(await us.pid(), [Buffer.from(dbValue), Buffer.from(ungrantedValue)]);
    expect(usFound).to.deep.equal([]);
  });

  it('keeps serving through a store kill -9, then reconnects and converges after the restart', async () => {
    const eu = await agent('eu1', { zone: 'eu' });
    expect((await call(eu.socket, 'POST', '/v1/containers', { id: 'web-1', service: 'api' })).status).to.equal(201);

    await stopProcess(store!, 'SIGKILL');
    store = undefined;
    await waitForSession(eu, 'backoff');
    expect((await held(eu)).secrets, 'held through the outage').to.deep.equal([{ name: 'db_password', version: 1 }]);
    const down = await call<ErrorBody>(eu.socket, 'POST', '/v1/containers', { id: 'web-2', service: 'api' });
    expect(down.status).to.equal(503);
    expect(down.body.error.message).to.match(/^store unreachable: /);

    closeClients();
    store = await startStore();
    await waitForSession(eu, 'ready', 30_000);
    cli(['secret', 'rotate', 'db_password', '-'], `${dbValue}-after-restart`);
    await until(async () => (await held(eu)).secrets[0]?.version === 2, 'rotation after the restart reaches the agent');
    const nodes = JSON.parse(cli(['node', 'ls', '--format', 'json'])) as { name: string; containers: { id: string }[] }[];
    expect(nodes.find((n) => n.name === 'eu1')!.containers.map((c) => c.id), 'the Hello told the restarted store what runs').to.deep.equal(['web-1']);
  });

  it('renews a short-lived certificate with the store before it expires, and keeps receiving', async () => {
    await stopProcess(store!);
    closeClients();
    store = await startStore(['--node-cert-ttl', '4']);
    const eu = await agent('eu1', { zone: 'eu' });
    expect((await call(eu.socket, 'POST', '/v1/containers', { id: 'web-1', service: 'api' })).status).to.equal(201);
    const notAfter = async () => Date.parse((await call<{ certificate: { notAfter: string } }>(eu.socket, 'GET', '/v1/status')).body.certificate.notAfter);
    const first = await notAfter();
    await until(async () => (await notAfter()) > first, 'a renewed certificate', 10_000);
    await new Promise((r) => setTimeout(r, Math.max(0, first - Date.now() + 500))); // past the first certificate's end
    cli(['secret', 'rotate', 'db_password', '-'], `${dbValue}-renewed`);
    await until(async () => (await held(eu)).secrets[0]?.version === 2, 'a rotation after the first certificate expired');
  });

  it('gives an agent that claims a label with the cluster token nothing constrained to node.labels, and no labelled or connected name; the name’s own token does', async () => {
    // The attack of issue 15: anyone with the join token starts an agent with `--label zone=eu`.
    const mallory = await agent('mallory', {}, { engineLabels: { zone: 'eu' } });
    const refused = await call<ErrorBody>(mallory.socket, 'POST', '/v1/containers', { id: 'm-1', service: 'api' });
    expect(refused.status, refused.text).to.equal(403);
    expect(refused.body.error.message).to.include('constraint node.labels.zone==eu not met');
    expect(refused.body.error.message).to.include('self-reported engine.labels.zone=eu does not count');
    expect((await held(mallory)).secrets).to.deep.equal([]);
    const claimed = nodeList().find((n) => n.name === 'mallory')!;
    expect([claimed.labels, claimed.engineLabels]).to.deep.equal([{}, { zone: 'eu' }]);

    // What it claims still serves a service that asks for a claim, and says so.
    cli(['secret', 'create', 'edge_cfg', '-'], 'edge');
    cli(['service', 'create', 'edge', '--secret', 'edge_cfg', '--constraint', 'engine.labels.zone==eu']);
    expect((await call(mallory.socket, 'POST', '/v1/containers', { id: 'm-2', service: 'edge' })).status).to.equal(201);
    expect((await held(mallory)).secrets.map((s) => s.name)).to.deep.equal(['edge_cfg']);

    // A labelled name is not for the cluster token: neither while its node is connected nor once it is gone.
    const eu = await agent('eu1', { zone: 'eu' });
    const whileUp = await refusedJoin('eu1', token, { zone: 'eu' });
    expect(whileUp.code, whileUp.output).to.equal(1);
    expect(whileUp.output).to.include('node name "eu1" has labels set by an admin: join it with its own token (`hush join-token --node eu1` on the store)');
    await eu.stop('SIGKILL');
    const whileDown = await refusedJoin('eu1', token);
    expect(whileDown.code, whileDown.output).to.equal(1);
    expect(whileDown.output).to.match(/refused to join this node: node name "eu1" has labels set by an admin/);

    // Nor is the name of a connected node, labelled or not.
    const plain = await agent('plain', {});
    const taken = await refusedJoin('plain', token);
    expect(taken.code, taken.output).to.equal(1);
    expect(taken.output).to.match(/node name "plain" is held by connected node [a-z0-9]{25}/);
    expect((await call(plain.socket, 'GET', '/v1/status')).status, 'the holder is untouched').to.equal(200);

    // The name's own token joins it, with its admin labels, and retires the node that held it before.
    const nameToken = cli(['join-token', '--node', 'eu1']);
    expect(nameToken).to.match(/^HUSH-1-[0-9a-f]{64}-[a-z2-7]{32}$/);
    expect(parseJoinToken(nameToken).caFingerprint).to.equal(parseJoinToken(token).caFingerprint);
    expect(nameToken).not.to.equal(token);
    expect(cli(['join-token', '--node', 'eu1']), 'asking again gives the same token').to.equal(nameToken);
    const back = await agent('eu1', {}, { token: nameToken });
    expect((await call(back.socket, 'POST', '/v1/containers', { id: 'web-1', service: 'api' })).status).to.equal(201);
    expect((await held(back)).secrets.map((s) => s.name)).to.deep.equal(['db_password']);
    const named = nodeList().filter((n) => n.name === 'eu1');
    expect(named.map((n) => [n.labels, n.status.state]), 'one node holds the name; the previous one is retired').to.deep.equal([[{ zone: 'eu' }, 'ready']]);

    // It is bound to that name only, and rotates per name; the cluster-wide token is unaffected.
    const elsewhere = await refusedJoin('eu2', nameToken);
    expect(elsewhere.code, elsewhere.output).to.equal(1);
    expect(elsewhere.output).to.include('join token is not valid for node name "eu2"');
    const rotated = cli(['join-token', '--node', 'eu1', '--rotate']);
    expect(rotated).not.to.equal(nameToken);
    const stale = await refusedJoin('eu1', nameToken);
    expect(stale.code, stale.output).to.equal(1);
    expect(stale.output).to.include('join token is not valid for node name "eu1"');
    expect(cli(['join-token'])).to.equal(token);
  });

  it('labels names: a name before its node joins once it has a token, never a typo; bad names and labels are refused and change nothing', async () => {
    const typo = hush(['node', 'label', 'nosuch', 'zone=eu'], { env: { HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir } });
    expect(typo.status).to.equal(1);
    expect(typo.stderr).to.match(/^error: no node "nosuch"; .*hush join-token --node nosuch/);
    const badName = hush(['join-token', '--node', '../x'], { env: { HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir } });
    expect(badName.status).to.equal(1);
    expect(badName.stderr).to.match(/^error: invalid node name "\.\.\/x"/);

    // Prepared ahead: a token for the name, then labels; the node joins with both in place.
    const nameToken = cli(['join-token', '--node', 'db1']);
    expect(cli(['node', 'label', 'db1', 'zone=eu', 'tier=db'])).to.equal('db1 zone=eu,tier=db');
    expect(cli(['node', 'label', 'db1', 'tier-'])).to.equal('db1 zone=eu');
    const db1 = await agent('db1', {}, { token: nameToken });
    expect((await call(db1.socket, 'POST', '/v1/containers', { id: 'web-1', service: 'api' })).status).to.equal(201);

    const emptyKey = hush(['node', 'label', 'db1', '=x'], { env: { HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir } });
    expect(emptyKey.status).to.equal(2);
    const lone = hush(['node', 'label', 'db1', '-'], { env: { HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir } });
    expect(lone.status).to.equal(2);
    expect(nodeList().find((n) => n.name === 'db1')!.labels).to.deep.equal({ zone: 'eu' });
  });

  it('follows node labels: placement changes deliver and withdraw secrets', async () => {
    const node = await agent('n1', { zone: 'us' });
    const refused = await call<ErrorBody>(node.socket, 'POST', '/v1/containers', { id: 'web-1', service: 'api' });
    expect(refused.status).to.equal(403);
    cli(['node', 'label', 'n1', 'zone=eu']);
    expect((await call(node.socket, 'POST', '/v1/containers', { id: 'web-1', service: 'api' })).status).to.equal(201);
    expect((await held(node)).secrets.map((s) => s.name)).to.deep.equal(['db_password']);
    cli(['node', 'label', 'n1', 'zone-']);
    await until(async () => (await held(node)).secrets.length === 0, 'the secret to leave the node once its constraint no longer matches');
  });

  it('stops a revoked node: its session is refused and it drops what it held', async () => {
    const eu = await agent('eu1', { zone: 'eu' });
    expect((await call(eu.socket, 'POST', '/v1/containers', { id: 'web-1', service: 'api' })).status).to.equal(201);
    cli(['node', 'rm', 'eu1']);
    await waitForSession(eu, 'revoked');
    expect((await held(eu)).secrets).to.deep.equal([]);
    const refused = await call<ErrorBody>(eu.socket, 'POST', '/v1/containers', { id: 'web-2', service: 'api' });
    expect(refused.status).to.equal(403);
    expect(refused.body.error.message).to.match(/revoked/);
  });

  it('refuses tampered, rotated-away and wrong-CA tokens, and exits with a one-line error', async () => {
    const { caFingerprint, secret } = parseJoinToken(token);
    const tampered = formatJoinToken(caFingerprint, secret.slice(0, -1) + (secret.endsWith('a') ? 'b' : 'a'));
    const t = await runAgentToExit({ store: `127.0.0.1:${port}`, token: tampered, socket: join(dir, 't.sock') });
    expect(t.code, t.output).to.equal(1);
    expect(t.output).to.match(/error: the store at 127\.0\.0\.1:\d+ refused to join this node: join token is not valid for node name /);

    cli(['join-token', '--rotate']);
    const old = await runAgentToExit({ store: `127.0.0.1:${port}`, token, socket: join(dir, 'o.sock') });
    expect(old.code, old.output).to.equal(1);
    expect(old.output).to.match(/refused to join this node: join token is not valid for node name /);

    const impostor = newTestCa().joinToken();
    const wrong = await runAgentToExit({ store: `127.0.0.1:${port}`, token: impostor, socket: join(dir, 'w.sock') });
    expect(wrong.code, wrong.output).to.equal(1);
    expect(wrong.output).to.include(`error: the store at 127.0.0.1:${port} presents CA ${caFingerprint}, but the join token expects`);
    expect(wrong.output).to.match(/wrong store or an impostor/);

    const usage = hush(['agent', '--store', `127.0.0.1:${port}`, '--label', 'nokey']);
    expect(usage.status).to.equal(2);
    const fuse = hush(['agent', '--store', `127.0.0.1:${port}`, '--token', token, '--fuse', 'libfuse3']);
    expect(fuse.status).to.equal(2);
    expect(fuse.stderr).to.match(/--fuse <implementation>.*Allowed choices are kernel, native/);
  });

  it('creates, writes, renames and removes no file but its socket, and no directory but mountpoints (strace)', async () => {
    const trace = join(dir, 'agent.strace');
    const syscalls = ['open', 'openat', 'creat', 'mkdir', 'mkdirat', 'rmdir', 'rename', 'renameat', 'renameat2', 'unlink', 'unlinkat', 'link', 'linkat', 'symlink', 'symlinkat', 'truncate', 'ftruncate', 'memfd_create'];
    const eu = await agent('eu1', { zone: 'eu' }, { strace: { file: trace, syscalls } });
    expect((await call(eu.socket, 'POST', '/v1/containers', { id: 'web-1', service: 'api' })).status).to.equal(201);
    // Reads through the FUSE mount, from another process, while traced.
    const file = join(mountsDirOf(eu), 'web-1', 'db');
    expect(spawnSync('cat', [file], { encoding: 'utf8' }).stdout).to.equal(dbValue);
    cli(['secret', 'rotate', 'db_password', '-'], `${dbValue}-v2`);
    await until(async () => (await held(eu)).secrets[0]?.version === 2, 'rotation');
    await until(async () => spawnSync('cat', [file], { encoding: 'utf8' }).stdout === `${dbValue}-v2`, 'the new version through the mount');
    expect((await call(eu.socket, 'DELETE', '/v1/containers/web-1')).status).to.equal(204);
    await eu.stop('SIGTERM');

    const lines = (await readFile(trace, 'utf8')).split('\n').filter((l) => l.trim() !== '' && !/ = -1 E/.test(l));
    const allowedPath = (path: string) => /^\/(proc|sys|dev)\//.test(path) || path === eu.socket || path === dir;
    // Empty directories to mount each container's FUSE filesystem on: they never hold a value.
    const mounts = mountsDirOf(eu);
    const isMountpoint = (path: string) => path === mounts || path.startsWith(`${mounts}/`);
    const offending = lines.filter((line) => {
      const call = /^\d+\s+(\w+)\((.*)$/.exec(line);
      if (!call) return false;
      const [, name, rest] = call;
      const path = /"([^"]*)"/.exec(rest!)?.[1] ?? '';
      if (/^(mkdir|mkdirat|rmdir)$/.test(name!) || (name === 'unlinkat' && rest!.includes('AT_REMOVEDIR'))) return !(isMountpoint(path) || allowedPath(path));
      if (name === 'open' || name === 'openat') {
        const writes = /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND/.test(rest!);
        return writes && !allowedPath(path);
      }
      if (name === 'ftruncate') return true;
      return !allowedPath(path);
    });
    expect(offending, offending.join('\n')).to.deep.equal([]);
    expect(lines.some((l) => l.includes(eu.socket)), 'the trace saw the socket being set up').to.equal(true);
  });
});
