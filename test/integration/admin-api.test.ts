/**
 * The admin API beyond secrets: services and their validation, secrets in use,
 * the HTTPS listener with client certificates and roles, and the life of
 * admin client certificates (records, lifetimes, revocation, renewal, the
 * store's own credentials in HUSH_HOME, and writing them safely with --out).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmod, chown, lstat, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { connect } from 'node:tls';
import * as pki from '../../src/pki/index.js';
import { ClusterPki } from '../../src/server/cluster-pki.js';
import { openStore } from '../../src/store/index.js';
import { call, closeClients, type ErrorBody } from '../helpers/http.js';
import { hush, startStoreProcess, stopProcess, waitForCluster, type StoreProcess } from '../helpers/hush-process.js';
import { foreignClientCert } from '../helpers/test-ca.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

interface TlsFiles {
  ca: Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** One GET over a fresh HTTPS connection: the status and the error message, or the connection error's code. */
function httpsGet(url: string, tls: TlsFiles, path = '/v1/secrets'): Promise<{ status: number; message?: string } | string> {
  return new Promise((resolve) => {
    const { hostname, port } = new URL(url);
    const req = request({ host: hostname, port, path, method: 'GET', agent: false, ...tls }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        let message: string | undefined;
        try {
          message = (JSON.parse(text) as ErrorBody).error?.message;
        } catch {
          // not an error body
        }
        resolve({ status: res.statusCode ?? 0, message });
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

const tlsFilesIn = async (dir: string): Promise<TlsFiles> => ({ ca: await readFile(join(dir, 'ca.pem')), cert: await readFile(join(dir, 'cert.pem')), key: await readFile(join(dir, 'key.pem')) });
const certIn = async (dir: string) => pki.readCertIdentity(await readFile(join(dir, 'cert.pem'), 'utf8'));
const DAY_MS = 86_400_000;

/** A raw HTTP/1.1 keep-alive connection over TLS, to send requests one after another on the very same socket. */
async function keepAliveConnection(url: string, tls: TlsFiles) {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port), ...tls });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  let received = '';
  let closed = false;
  socket.on('data', (c: Buffer) => (received += c.toString()));
  socket.on('close', () => (closed = true));
  socket.on('error', () => {}); // a write after the server closed it: `closed` tells the story
  const complete = (text: string) => {
    const end = text.indexOf('\r\n\r\n');
    const length = /content-length: (\d+)/i.exec(text);
    return end >= 0 && length !== null && text.length >= end + 4 + Number(length[1]);
  };
  return {
    /** Sends a GET and resolves with what came back on this socket: a full response, or whatever arrived before it closed. */
    async get(path: string): Promise<string> {
      const from = received.length;
      if (!closed) socket.write(`GET ${path} HTTP/1.1\r\nHost: hush\r\nConnection: keep-alive\r\n\r\n`);
      await until(() => closed || complete(received.slice(from)), `an answer to GET ${path}`, 10_000);
      return received.slice(from);
    },
    isClosed: () => closed,
    destroy: () => socket.destroy(),
  };
}

interface CertListing {
  name: string;
  role: string;
  serial: string;
  status: string;
  notAfter: string;
  revokedAt?: string;
  supersededBy?: string;
}

async function httpsStatus(url: string, tls: TlsFiles): Promise<number | string> {
  const reply = await httpsGet(url, tls);
  return typeof reply === 'string' ? reply : reply.status;
}

describe('admin API (integration)', function () {
  this.timeout(60_000);
  let dir: string;
  let store: StoreProcess;
  let adminUrl: string;

  before(async () => {
    dir = await tempDir();
    store = await startStoreProcess({ data: join(dir, 'data'), socket: join(dir, 'admin.sock'), home: dir, extraArgs: ['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'] });
    adminUrl = (await waitForCluster(dir)).adminAddress;
  });
  after(async () => {
    closeClients();
    await stopProcess(store);
    await removeDir(dir);
  });

  const admin = (args: string[], input?: string) => hush(args, { env: { HUSH_HOME: dir, HUSH_HOST: '' }, input });

  it('creates services with validated grants; refuses bad targets, unknown secrets and unknown fields', async () => {
    expect(admin(['secret', 'create', 'db_pw', '-'], 'pw').status).to.equal(0);
    const ok = admin(['service', 'create', 'db', '--secret', 'db_pw,target=password,uid=999,mode=0400', '--constraint', 'node.labels.zone==eu']);
    expect(ok.status, ok.stderr).to.equal(0);
    const inspect = JSON.parse(admin(['service', 'inspect', 'db']).stdout) as { grants: unknown[]; constraints: string[] }[];
    expect(inspect[0].grants).to.deep.equal([{ source: 'db_pw', target: 'password', uid: 999, gid: 0, mode: 0o400 }]);
    expect(inspect[0].constraints).to.deep.equal(['node.labels.zone==eu']);

    const socket = join(dir, 'admin.sock');
    const before = (await call<{ revision: number }>(socket, 'GET', '/healthz')).body.revision;
    const bad: [unknown, number, RegExp][] = [
      [{ name: 'x', grants: [{ source: 'db_pw', target: '../etc/passwd' }] }, 400, /target/],
      [{ name: 'x', grants: [{ source: 'db_pw', target: 'a/b' }] }, 400, /target/],
      [{ name: 'x', grants: [{ source: 'db_pw', target: 'same' }, { source: 'db_pw', target: 'same' }] }, 400, /already used by grant/],
      [{ name: 'x', grants: [{ source: 'db_pw', mode: 0o1777 }] }, 400, /mode/],
      [{ name: 'x', grants: [{ source: 'nope' }] }, 404, /nope/],
      [{ name: 'x', constraints: ['node.labels.zone=eu'] }, 400, /constraint/],
      [{ name: 'x', grant: [] }, 400, /unknown field "grant"/],
      [{ name: 'db', grants: [] }, 409, /already exists/],
    ];
    for (const [body, status, message] of bad) {
      const reply = await call<{ error: { message: string } }>(socket, 'POST', '/v1/services', body);
      expect(reply.status, JSON.stringify(body)).to.equal(status);
      expect(reply.body.error.message, JSON.stringify(body)).to.match(message);
    }
    expect((await call<{ revision: number }>(socket, 'GET', '/healthz')).body.revision).to.equal(before);
  });

  it('refuses to remove a secret a service uses, naming the service', () => {
    expect(admin(['secret', 'create', 'in_use_pw', '-'], 'pw').status).to.equal(0);
    expect(admin(['service', 'create', 'user_of_pw', '--secret', 'in_use_pw']).status).to.equal(0);
    const rm = admin(['secret', 'rm', 'in_use_pw']);
    expect(rm.status).to.equal(1);
    expect(rm.stderr).to.match(/^error: secret "in_use_pw" is used by service user_of_pw/);
    expect(admin(['service', 'rm', 'user_of_pw']).status).to.equal(0);
    expect(admin(['secret', 'rm', 'in_use_pw']).status).to.equal(0);
  });

  it('serves the same API on HTTPS to the admin client certificate in HUSH_HOME', () => {
    expect(admin(['secret', 'create', 'via_https', '-'], 'x').status).to.equal(0);
    const ls = hush(['secret', 'ls', '--format', 'json'], { env: { HUSH_HOME: dir, HUSH_HOST: adminUrl } });
    expect(ls.status, ls.stderr).to.equal(0);
    expect((JSON.parse(ls.stdout) as { name: string }[]).map((s) => s.name)).to.include('via_https');
  });

  it('enforces roles: an auditor reads but cannot write, an operator cannot remove or read the join token', async () => {
    const auditorDir = join(dir, 'auditor');
    const operatorDir = join(dir, 'operator');
    expect(admin(['cert', 'create', 'alice', '--role', 'auditor', '--out', auditorDir]).status).to.equal(0);
    expect(admin(['cert', 'create', 'bob', '--role', 'operator', '--out', operatorDir]).status).to.equal(0);
    const as = (home: string, args: string[], input?: string) => hush(args, { env: { HUSH_HOME: home, HUSH_HOST: adminUrl }, input });

    expect(as(auditorDir, ['secret', 'ls']).status).to.equal(0);
    const denied = as(auditorDir, ['secret', 'create', 'nope', '-'], 'x');
    expect(denied.status).to.equal(1);
    expect(denied.stderr).to.match(/^error: role "auditor" may not secret.write/);

    expect(as(operatorDir, ['secret', 'create', 'by_operator', '-'], 'x').status).to.equal(0);
    expect(as(operatorDir, ['secret', 'rm', 'by_operator']).stderr).to.match(/role "operator" may not secret.delete/);
    expect(as(operatorDir, ['join-token']).stderr).to.match(/role "operator" may not token.read/);
    expect(as(operatorDir, ['cert', 'create', 'eve', '--role', 'admin', '--out', join(dir, 'eve')]).stderr).to.match(/may not cert.issue/);
  });

  it('refuses HTTPS clients without a certificate or with one from another CA', async () => {
    const ca = await readFile(join(dir, 'ca.pem'));
    expect(await httpsStatus(adminUrl, { ca, cert: await readFile(join(dir, 'cert.pem')), key: await readFile(join(dir, 'key.pem')) })).to.equal(200);
    // The TLS 1.3 layer refuses them, not the app (which would answer a status): no certificate gets TLS 1.3's alert for it.
    expect(await httpsStatus(adminUrl, { ca })).to.equal('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    const foreign = foreignClientCert();
    // One from another CA: node's server checks it after OpenSSL's handshake and drops the connection without an alert.
    expect(await httpsStatus(adminUrl, { ca, cert: foreign.certPem, key: foreign.keyPem })).to.equal('ECONNRESET');
  });

  it('issues admin certificates for 30 days by default (never more than 90), honours --ttl, and refuses a name in use', async () => {
    const carol = join(dir, 'carol');
    const created = admin(['cert', 'create', 'carol', '--role', 'auditor', '--out', carol]);
    expect(created.status, created.stderr).to.equal(0);
    const lifetime = (await certIn(carol)).notAfter.getTime() - Date.now();
    expect(lifetime).to.be.within(29 * DAY_MS, 30 * DAY_MS + 60_000);

    const dave = join(dir, 'dave');
    expect(admin(['cert', 'create', 'dave', '--role', 'operator', '--out', dave, '--ttl', '12h']).status).to.equal(0);
    expect((await certIn(dave)).notAfter.getTime() - Date.now()).to.be.within(12 * 3600_000 - 120_000, 12 * 3600_000 + 60_000);

    const before = (await call<{ revision: number }>(join(dir, 'admin.sock'), 'GET', '/healthz')).body.revision;
    const taken = admin(['cert', 'create', 'carol', '--role', 'admin', '--out', join(dir, 'carol-again')]);
    expect(taken.status).to.equal(1);
    expect(taken.stderr).to.match(/^error: a certificate named "carol" exists already \(serial [0-9a-f]{32}/);
    expect(await lstat(join(dir, 'carol-again')).catch(() => 'absent')).to.equal('absent');

    for (const [ttl, message] of [
      ['91d', /longer than the maximum of 90d/],
      ['365d', /longer than the maximum of 90d/],
      ['12x', /not a duration/],
      ['0s', /too short/],
    ] as const) {
      const bad = admin(['cert', 'create', `ttl-${ttl}`, '--role', 'auditor', '--out', join(dir, `ttl-${ttl}`), '--ttl', ttl]);
      expect(bad.status, ttl).to.equal(2);
      expect(bad.stderr, ttl).to.match(message);
    }
    // The store applies the same ceiling to a client that skips the CLI.
    const socket = join(dir, 'admin.sock');
    const direct = await call<ErrorBody>(socket, 'POST', '/v1/certs', { name: 'eternal', role: 'admin', ttlSeconds: 365 * 86_400 });
    expect(direct.status).to.equal(400);
    expect(direct.body.error.message).to.match(/maximum of 90d/);
    const serialName = await call<ErrorBody>(socket, 'POST', '/v1/certs', { name: '4f0e9a7b2c1d3e5f60718293a4b5c6d7', role: 'admin' });
    expect(serialName.status).to.equal(400);
    expect(serialName.body.error.message).to.match(/looks like a serial/);
    expect((await call<{ revision: number }>(socket, 'GET', '/healthz')).body.revision).to.equal(before);

    const ls = admin(['cert', 'ls', '--format', 'json']);
    expect(ls.status, ls.stderr).to.equal(0);
    const carolListed = (JSON.parse(ls.stdout) as CertListing[]).find((c) => c.name === 'carol');
    expect(carolListed).to.include({ role: 'auditor', serial: (await certIn(carol)).serial, status: 'active' });
    expect(Date.parse(carolListed!.notAfter)).to.equal((await certIn(carol)).notAfter.getTime());
    const table = admin(['cert', 'ls']).stdout;
    expect(table).to.match(/^NAME +ROLE +SERIAL +STATUS +EXPIRES \(UTC\)$/m);
    expect(table).to.match(/^carol +auditor +[0-9a-f]{32} +active +\d{4}-\d\d-\d\d \d\d:\d\d$/m);
  });

  it('revokes at once: an open keep-alive connection is cut, new connections are refused, and cert ls shows it', async () => {
    const erin = join(dir, 'erin');
    expect(admin(['cert', 'create', 'erin', '--role', 'operator', '--out', erin]).status).to.equal(0);
    const files = await tlsFilesIn(erin);
    const serial = (await certIn(erin)).serial;
    const issued = Date.now();

    const connection = await keepAliveConnection(adminUrl, files);
    try {
      expect(await connection.get('/v1/secrets')).to.match(/^HTTP\/1\.1 200 /);
      expect(await connection.get('/v1/services')).to.match(/^HTTP\/1\.1 200 /);
      expect(connection.isClosed()).to.equal(false);

      const revoked = admin(['cert', 'revoke', 'erin']);
      expect(revoked.status, revoked.stderr).to.equal(0);
      expect(revoked.stdout).to.equal(`revoked ${serial} (erin, operator)\n`);

      // The store closed the socket when the revocation committed, before any further request: it carries nothing more.
      await until(() => connection.isClosed(), 'the store to close the revoked connection', 5000);
      expect(await connection.get('/v1/secrets')).to.equal('');
    } finally {
      connection.destroy();
    }

    const fresh = await httpsGet(adminUrl, files);
    expect(fresh).to.deep.include({ status: 401 });
    expect((fresh as { message: string }).message).to.match(new RegExp(`client certificate ${serial} \\("erin"\\) was revoked at `));
    const viaCli = hush(['secret', 'ls'], { env: { HUSH_HOME: erin, HUSH_HOST: adminUrl } });
    expect(viaCli.status).to.equal(1);
    expect(viaCli.stderr).to.match(/^error: client certificate [0-9a-f]{32} \("erin"\) was revoked at /);

    const listed = (JSON.parse(admin(['cert', 'ls', '--format', 'json']).stdout) as CertListing[]).find((c) => c.serial === serial);
    expect(listed).to.include({ name: 'erin', status: 'revoked' });
    expect(Date.parse(listed!.revokedAt!)).to.be.within(issued, Date.now());
    expect(admin(['cert', 'revoke', serial]).stderr).to.match(/was revoked already/);
    expect(admin(['cert', 'revoke', 'nobody-by-this-name']).stderr).to.match(/no certificate with the serial or name "nobody-by-this-name"/);

    // By serial too; and a revoked name is free to be issued again, as a new serial.
    const frank = join(dir, 'frank');
    expect(admin(['cert', 'create', 'frank', '--role', 'auditor', '--out', frank]).status).to.equal(0);
    const frankSerial = (await certIn(frank)).serial;
    expect(admin(['cert', 'revoke', frankSerial.toUpperCase()]).status).to.equal(0);
    expect(await httpsGet(adminUrl, await tlsFilesIn(frank))).to.deep.include({ status: 401 });
    const erinAgain = join(dir, 'erin-again');
    expect(admin(['cert', 'create', 'erin', '--role', 'auditor', '--out', erinAgain]).status).to.equal(0);
    expect(await httpsGet(adminUrl, await tlsFilesIn(erinAgain))).to.deep.equal({ status: 200, message: undefined });
  });

  it('renews a certificate: same name and role, the new one works, the old serial is superseded and refused', async () => {
    const gina = join(dir, 'gina');
    expect(admin(['cert', 'create', 'gina', '--role', 'operator', '--out', gina, '--ttl', '1h']).status).to.equal(0);
    const old = await certIn(gina);
    const renewedDir = join(dir, 'gina-renewed');
    const renewed = admin(['cert', 'renew', 'gina', '--out', renewedDir, '--ttl', '2d']);
    expect(renewed.status, renewed.stderr).to.equal(0);
    expect(renewed.stdout).to.include(`the old certificate ${old.serial} no longer works`);
    const fresh = await certIn(renewedDir);
    expect(fresh).to.include({ commonName: 'gina', role: 'operator' });
    expect(fresh.serial).not.to.equal(old.serial);
    expect(fresh.notAfter.getTime() - Date.now()).to.be.within(2 * DAY_MS - 120_000, 2 * DAY_MS + 60_000);

    expect(hush(['secret', 'create', 'by_renewed', '-'], { env: { HUSH_HOME: renewedDir, HUSH_HOST: adminUrl }, input: 'x' }).status).to.equal(0);
    const refused = await httpsGet(adminUrl, await tlsFilesIn(gina));
    expect(refused).to.deep.include({ status: 401 });
    expect((refused as { message: string }).message).to.match(/was replaced by a renewal/);
    const listed = JSON.parse(admin(['cert', 'ls', '--format', 'json']).stdout) as CertListing[];
    expect(listed.find((c) => c.serial === old.serial)).to.include({ status: 'superseded', supersededBy: fresh.serial });
    expect(listed.find((c) => c.serial === fresh.serial)).to.include({ name: 'gina', status: 'active' });

    // The --out checks come before the store is asked: an existing directory with credentials in it renews nothing.
    const again = admin(['cert', 'renew', 'gina', '--out', renewedDir]);
    expect(again.status).to.equal(1);
    expect(again.stderr).to.match(/key\.pem exists already/);
    expect((JSON.parse(admin(['cert', 'ls', '--format', 'json']).stdout) as CertListing[]).filter((c) => c.name === 'gina')).to.have.length(2);
    expect(admin(['cert', 'renew', 'never-issued', '--out', join(dir, 'never')]).stderr).to.match(/no certificate named "never-issued" to renew/);
  });

  it('writes credentials only into a private directory, exclusively: planted files and symlinks get nothing', async () => {
    const asNobody = (...cmd: string[]) => {
      const r = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', ...cmd], { encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
    };
    const issuedNames = () => (JSON.parse(admin(['cert', 'ls', '--format', 'json']).stdout) as CertListing[]).map((c) => c.name);

    // A shared directory (like /tmp: world-writable, sticky) where another user planted a key.pem anyone can read.
    await chmod(dir, 0o711); // so that uid 65534 reaches the shared directory inside (the files in dir stay 0600)
    const shared = join(dir, 'shared');
    await mkdir(shared);
    await chmod(shared, 0o1777);
    asNobody('sh', '-c', `umask 0; : > ${shared}/key.pem`);
    expect((await lstat(join(shared, 'key.pem'))).mode & 0o777).to.equal(0o666);
    const planted = admin(['cert', 'create', 'victim-1', '--role', 'admin', '--out', shared]);
    expect(planted.status).to.equal(1);
    expect(planted.stderr).to.match(/^error: .*shared is writable by other users \(mode 1777\); refusing to write credentials into it/);
    expect(await readFile(join(shared, 'key.pem'), 'utf8')).to.equal('');
    expect(admin(['cert', 'create', 'renewed-into-shared', '--role', 'auditor', '--out', join(dir, 'renewed-into-shared')]).status).to.equal(0);
    expect(admin(['cert', 'renew', 'renewed-into-shared', '--out', shared]).stderr).to.match(/writable by other users/);

    // Group-writable, and owned by another user, are refused the same way.
    const groupWritable = join(dir, 'group-writable');
    await mkdir(groupWritable, { mode: 0o700 });
    await chmod(groupWritable, 0o770);
    expect(admin(['cert', 'create', 'victim-2', '--role', 'admin', '--out', groupWritable]).stderr).to.match(/writable by its group \(mode 0770\)/);
    const theirs = join(dir, 'theirs');
    await mkdir(theirs, { mode: 0o755 });
    await chown(theirs, 65534, 65534);
    expect(admin(['cert', 'create', 'victim-3', '--role', 'admin', '--out', theirs]).stderr).to.match(/owned by uid 65534, not by you \(uid 0\)/);
    expect(await readdir(theirs)).to.deep.equal([]);

    // Our own private directory, but a key.pem that is a symlink (dangling, or to a file) or a readable file already: never followed or overwritten.
    const stolen = join(dir, 'stolen');
    await mkdir(stolen, { mode: 0o777 });
    await chmod(stolen, 0o777);
    for (const [i, plant] of [
      async (out: string) => symlink(join(stolen, 'dangling.pem'), join(out, 'key.pem')),
      async (out: string) => {
        await writeFile(join(stolen, 'existing.pem'), '');
        await chmod(join(stolen, 'existing.pem'), 0o666);
        await symlink(join(stolen, 'existing.pem'), join(out, 'key.pem'));
      },
      async (out: string) => {
        await writeFile(join(out, 'key.pem'), '');
        await chmod(join(out, 'key.pem'), 0o666);
      },
      async (out: string) => symlink(join(stolen, 'cert-dangling.pem'), join(out, 'cert.pem')),
    ].entries()) {
      const out = join(dir, `private-${i}`);
      await mkdir(out, { mode: 0o700 });
      await plant(out);
      const refused = admin(['cert', 'create', `victim-link-${i}`, '--role', 'admin', '--out', out]);
      expect(refused.status, `case ${i}`).to.equal(1);
      expect(refused.stderr, `case ${i}`).to.match(/\.pem exists already; refusing to overwrite or follow it/);
    }
    expect((await readdir(stolen)).sort()).to.deep.equal(['existing.pem']);
    expect(await readFile(join(stolen, 'existing.pem'), 'utf8')).to.equal('');
    expect(await readFile(join(dir, 'private-2', 'key.pem'), 'utf8')).to.equal('');

    // Nothing was issued for any refused request: the names are still free.
    expect(issuedNames().filter((n) => n.startsWith('victim'))).to.deep.equal([]);

    // A new directory is made 0700 and the files 0600.
    const fresh = join(dir, 'fresh', 'nested');
    expect(admin(['cert', 'create', 'henry', '--role', 'auditor', '--out', fresh]).status).to.equal(0);
    expect((await lstat(fresh)).mode & 0o777).to.equal(0o700);
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) expect((await lstat(join(fresh, f))).mode & 0o777, f).to.equal(0o600);
  });
});

describe("the store's own admin credentials in HUSH_HOME (integration)", function () {
  this.timeout(90_000);
  let dir: string;
  let store: StoreProcess | undefined;

  // Each test its own HUSH_HOME and store: what one leaves in cert.pem is what the next would start with.
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    closeClients();
    if (store) await stopProcess(store);
    store = undefined;
    await removeDir(dir);
  });

  const start = async (extraArgs: string[] = []) => {
    // config.json of the previous run names its listeners: gone, so waitForCluster reads this run's.
    await rm(join(dir, 'config.json'), { force: true });
    store = await startStoreProcess({ data: join(dir, 'data'), socket: join(dir, 'admin.sock'), home: dir, extraArgs: ['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...extraArgs] });
    return (await waitForCluster(dir)).adminAddress;
  };

  it('renews them on a timer while running once less than a third of their lifetime is left; the old serial is refused', async () => {
    // 12 s: the shortest lifetime the store takes, so that renewal (at 8 s) happens within the test.
    const adminUrl = await start(['--admin-cert-ttl', '12s']);
    const first = await certIn(dir);
    expect(first.notAfter.getTime() - Date.now()).to.be.below(13_000);
    const firstFiles = await tlsFilesIn(dir);
    expect(await httpsGet(adminUrl, firstFiles)).to.deep.equal({ status: 200, message: undefined });

    await until(async () => (await certIn(dir)).serial !== first.serial, 'the store to renew cert.pem in HUSH_HOME', 20_000);
    const second = await certIn(dir);
    expect(second).to.include({ commonName: 'hush-admin', role: 'admin' });
    // Renewed before the old one expired, not after.
    expect(Date.now()).to.be.below(first.notAfter.getTime());
    expect(await httpsGet(adminUrl, await tlsFilesIn(dir))).to.deep.equal({ status: 200, message: undefined });
    const old = await httpsGet(adminUrl, firstFiles);
    expect(old).to.deep.include({ status: 401 });
    expect((old as { message: string }).message).to.match(/was replaced by a renewal/);
    const ls = hush(['cert', 'ls', '--format', 'json'], { env: { HUSH_HOME: dir, HUSH_HOST: adminUrl } });
    expect(ls.status, ls.stderr).to.equal(0);
    const listed = JSON.parse(ls.stdout) as CertListing[];
    expect(listed.find((c) => c.serial === first.serial)).to.include({ name: 'hush-admin', status: 'superseded' });
    // The log line follows the files; on a loaded machine it may reach the pipe a moment later.
    await until(() => /renewed the admin credentials in HUSH_HOME/.test(store!.output()), 'the store to log the renewal', 10_000);
  });

  it('replaces at start a certificate that is not on record, even one the CA signed with OU=admin, and refuses it over HTTPS', async () => {
    // What an older store left behind (it kept no records), or a certificate minted from a copy of the CA key.
    const opened = await openStore({ dataDir: join(dir, 'data') });
    let unrecorded: pki.KeyAndCert;
    try {
      const clusterPki = await ClusterPki.open(opened.backend, opened.secrets, { nodeCertSeconds: 3600 });
      unrecorded = clusterPki.issueAdminCert('hush-admin', 'admin', 60 * 86_400);
    } finally {
      await opened.backend.close();
    }
    await writeFile(join(dir, 'key.pem'), unrecorded.keyPem, { mode: 0o600 });
    await writeFile(join(dir, 'cert.pem'), unrecorded.certPem, { mode: 0o600 });
    const unrecordedSerial = pki.readCertIdentity(unrecorded.certPem).serial;

    const adminUrl = await start();
    const replaced = await certIn(dir);
    expect(replaced.serial).not.to.equal(unrecordedSerial);
    expect(replaced.notAfter.getTime() - Date.now()).to.be.within(29 * DAY_MS, 30 * DAY_MS + 60_000);
    expect(await httpsGet(adminUrl, await tlsFilesIn(dir))).to.deep.equal({ status: 200, message: undefined });

    const ca = await readFile(join(dir, 'ca.pem'));
    const refused = await httpsGet(adminUrl, { ca, cert: unrecorded.certPem, key: unrecorded.keyPem });
    expect(refused).to.deep.include({ status: 401 });
    expect((refused as { message: string }).message).to.match(new RegExp(`client certificate ${unrecordedSerial} is not on record`));
    // Not even the public routes answer it.
    expect(await httpsGet(adminUrl, { ca, cert: unrecorded.certPem, key: unrecorded.keyPem }, '/healthz')).to.deep.include({ status: 401 });

    // A valid certificate with more than a third of its life left is kept across a restart.
    await stopProcess(store!);
    store = undefined;
    await start();
    expect((await certIn(dir)).serial).to.equal(replaced.serial);
  });
});
