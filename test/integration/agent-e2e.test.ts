/**
 * End to end, as an operator would run it: `hush store --listen`, two
 * `hush agent` processes with different labels, and the CLI. Checks who gets
 * what, crash and restart of the store, revocation, bad tokens, and the
 * agent's hygiene: no plaintext of what it was not entitled to anywhere in
 * its memory, no file written anywhere.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { certFingerprint, createClusterCa, formatJoinToken, newJoinSecret, parseJoinToken } from '../../src/pki/index.js';
import { findInProcessMemory, freePort, mountsDirOf, runAgentToExit, startAgentProcess, waitForSession, type AgentProcess } from '../helpers/agent-process.js';
import { call, closeClients, type ErrorBody } from '../helpers/http.js';
import { until } from '../helpers/run-process.js';
import { hush, startStoreProcess, stopProcess, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

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

  const cli = (args: string[], input?: string) => {
    const result = hush(args, { env: { HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir }, input });
    if (result.status !== 0) throw new Error(`hush ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
    return result.stdout.trim();
  };
  const startStore = (extraArgs: string[] = []) =>
    startStoreProcess({ data: join(dir, 'data'), socket, home: dir, extraArgs: ['--listen', `127.0.0.1:${port}`, '--admin', '', ...extraArgs] });
  const agent = async (name: string, labels: Record<string, string>, extra: { strace?: { file: string; syscalls: string[] } } = {}) => {
    const a = await startAgentProcess({ store: `127.0.0.1:${port}`, token, name, labels, socket: join(dir, `${name}.sock`), ...extra });
    agents.push(a);
    return a;
  };
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
    const nodes = JSON.parse(cli(['node', 'ls', '--format', 'json'])) as { name: string; labels: Record<string, string>; containers: { id: string }[] }[];
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
    expect(t.output).to.match(/error: the store at 127\.0\.0\.1:\d+ refused to join this node: /);

    cli(['join-token', '--rotate']);
    const old = await runAgentToExit({ store: `127.0.0.1:${port}`, token, socket: join(dir, 'o.sock') });
    expect(old.code, old.output).to.equal(1);
    expect(old.output).to.match(/refused to join this node/);

    const impostor = formatJoinToken(certFingerprint(createClusterCa().certPem), newJoinSecret());
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
