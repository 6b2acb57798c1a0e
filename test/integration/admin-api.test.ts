/**
 * The admin API beyond secrets: services and their validation, secrets in use,
 * and the HTTPS listener with client certificates and roles.
 */
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import * as pki from '../../src/pki/index.js';
import { call, closeClients } from '../helpers/http.js';
import { hush, startStoreProcess, stopProcess, waitForCluster, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

function httpsStatus(url: string, tls: { ca: Buffer; cert?: string | Buffer; key?: string | Buffer }): Promise<number | string> {
  return new Promise((resolve) => {
    const { hostname, port } = new URL(url);
    const req = request({ host: hostname, port, path: '/v1/secrets', method: 'GET', ...tls }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
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
    const rm = admin(['secret', 'rm', 'db_pw']);
    expect(rm.status).to.equal(1);
    expect(rm.stderr).to.match(/^error: secret "db_pw" is used by service db/);
    expect(admin(['service', 'rm', 'db']).status).to.equal(0);
    expect(admin(['secret', 'rm', 'db_pw']).status).to.equal(0);
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
    expect(await httpsStatus(adminUrl, { ca })).to.be.a('string');
    const foreignCa = pki.createClusterCa();
    const foreign = pki.issueClientCert(foreignCa, { commonName: 'mallory', role: 'admin' });
    expect(await httpsStatus(adminUrl, { ca, cert: foreign.certPem, key: foreign.keyPem })).to.be.a('string');
  });
});
