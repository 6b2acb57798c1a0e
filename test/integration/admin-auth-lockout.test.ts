/**
 * The admin HTTPS listener's lockout on failed client authentication, against
 * a real store with tight flags (3 failures, a 4 s lockout): failed TLS
 * handshakes (no certificate, another CA's) and requests refused 401 (a
 * revoked certificate) lock their address out, so that even a valid admin
 * certificate from it is refused before TLS until the lockout ends; other
 * addresses and the unix socket are unaffected; valid requests alone never
 * lock anyone out. Each case connects from its own loopback address
 * (127.0.0.x) so the cases do not share a count.
 */
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { call, closeClients } from '../helpers/http.js';
import { hush, startStoreProcess, stopProcess, waitForCluster, type StoreProcess } from '../helpers/hush-process.js';
import { foreignClientCert } from '../helpers/test-ca.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const LOCKOUT_MS = 4000;
const LOCKOUT_LOG = 'client authentication failed again and again from one address on the admin HTTPS listener';

interface ClientTls {
  ca: Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** GET /v1/secrets over a fresh connection from `from`: the status, or the connection error. */
function httpsGet(url: string, from: string, t: ClientTls): Promise<{ status: number } | string> {
  return new Promise((resolve) => {
    const { hostname, port } = new URL(url);
    const req = request({ host: hostname, port, path: '/v1/secrets', method: 'GET', agent: false, localAddress: from, ...t }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(`${err.code ?? ''} ${err.message}`));
    req.end();
  });
}

/**
 * A handshake the store refused for its client certificate (none, or one from
 * another CA): TLS 1.3's certificate_required alert, or the connection reset
 * during the handshake. Not just any error: a store that is down (ECONNREFUSED)
 * or a server certificate the client refuses would not count as a failed
 * client authentication.
 */
const REFUSED_CLIENT_AUTH = /^(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED|ECONNRESET|EPIPE) /;

/** What a connection closed by the store before TLS looks like to a client. */
const REFUSED_BEFORE_TLS = /^(ECONNRESET|EPIPE) .*(socket disconnected before secure TLS connection was established|socket hang up|ECONNRESET|EPIPE)/;

describe('admin HTTPS listener: lockout on failed client authentication (integration)', function () {
  this.timeout(120_000);
  let dir: string;
  let socket: string;
  let store: StoreProcess;
  let adminUrl: string;
  let admin: ClientTls;

  const lockoutLines = () => store.output().split('\n').filter((line) => line.includes(LOCKOUT_LOG));
  const lockoutLinesFor = (address: string) => lockoutLines().filter((line) => line.includes(`"address":"${address}"`));

  /** Valid requests from `from` until one is answered 200 (the lockout has ended). */
  const untilAdmitted = (from: string) =>
    until(async () => {
      const reply = await httpsGet(adminUrl, from, admin);
      return typeof reply !== 'string' && reply.status === 200;
    }, `a valid certificate from ${from} to be served again after the lockout`, 30_000, 250);

  before(async () => {
    dir = await tempDir('hush-authlock-');
    socket = join(dir, 'admin.sock');
    store = await startStoreProcess({
      data: join(dir, 'data'),
      socket,
      home: dir,
      extraArgs: ['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--admin-auth-failures', '3', '--admin-auth-lockout', String(LOCKOUT_MS)],
    });
    adminUrl = (await waitForCluster(dir)).adminAddress;
    expect(adminUrl).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
    admin = { ca: await readFile(join(dir, 'ca.pem')), cert: await readFile(join(dir, 'cert.pem')), key: await readFile(join(dir, 'key.pem')) };
  });
  after(async () => {
    closeClients();
    if (store) await stopProcess(store);
    if (dir) await removeDir(dir);
  });

  it('valid requests alone never lock out: 50 in a row from one address are all served', async () => {
    const statuses: (number | string)[] = [];
    for (let i = 0; i < 50; i++) {
      const reply = await httpsGet(adminUrl, '127.0.0.2', admin);
      statuses.push(typeof reply === 'string' ? reply : reply.status);
    }
    expect(statuses).to.deep.equal(new Array(50).fill(200));
    expect(lockoutLinesFor('127.0.0.2')).to.deep.equal([]);
  });

  it('3 failed handshakes (no certificate, another CA) lock the address out: even a valid certificate is refused before TLS until the lockout ends; other addresses and the unix socket are served meanwhile', async () => {
    const from = '127.0.0.3';
    // Positive control: this address is served before it fails.
    expect(await httpsGet(adminUrl, from, admin)).to.deep.equal({ status: 200 });
    const foreign = foreignClientCert();
    const attempts = [{ ca: admin.ca }, { ca: admin.ca, cert: foreign.certPem, key: foreign.keyPem }, { ca: admin.ca }];
    for (const attempt of attempts) expect(await httpsGet(adminUrl, from, attempt)).to.match(REFUSED_CLIENT_AUTH);
    await until(() => lockoutLinesFor(from).length > 0, `the store to log the lockout of ${from}`);

    expect(await httpsGet(adminUrl, from, admin)).to.match(REFUSED_BEFORE_TLS);
    expect(await httpsGet(adminUrl, '127.0.0.4', admin)).to.deep.equal({ status: 200 });
    expect((await call(socket, 'GET', '/v1/secrets')).status).to.equal(200);

    await untilAdmitted(from);
    // Logged once for the lockout, with the address and the count, never a certificate.
    const lines = lockoutLinesFor(from);
    expect(lines).to.have.length(1);
    expect(JSON.parse(lines[0])).to.include({ address: from, failures: 3, lockoutMs: LOCKOUT_MS });
    expect(store.output()).not.to.include('BEGIN CERTIFICATE');
  });

  it('requests with a revoked certificate count too: 3 answered 401 lock the address out until the lockout ends', async () => {
    const from = '127.0.0.5';
    const issued = await call<{ certPem: string; keyPem: string }>(socket, 'POST', '/v1/certs', { name: 'revoked-soon', role: 'auditor' });
    expect(issued.status, issued.text).to.equal(201);
    const revokedSoon = { ca: admin.ca, cert: issued.body.certPem, key: issued.body.keyPem };
    // Positive control: the certificate is served while it is admitted.
    expect(await httpsGet(adminUrl, from, revokedSoon)).to.deep.equal({ status: 200 });
    const revoked = hush(['cert', 'revoke', 'revoked-soon'], { env: { HUSH_HOST: `unix://${socket}` } });
    expect(revoked.status, revoked.stderr).to.equal(0);

    for (let i = 0; i < 3; i++) expect(await httpsGet(adminUrl, from, revokedSoon)).to.deep.equal({ status: 401 });
    await until(() => lockoutLinesFor(from).length > 0, `the store to log the lockout of ${from}`);
    expect(await httpsGet(adminUrl, from, admin)).to.match(REFUSED_BEFORE_TLS);
    expect(await httpsGet(adminUrl, '127.0.0.6', admin)).to.deep.equal({ status: 200 });

    await untilAdmitted(from);
    expect(lockoutLinesFor(from)).to.have.length(1);
  });

  it('bad flag values are refused with a usage error', () => {
    for (const [flag, value] of [['--admin-auth-failures', '-1'], ['--admin-auth-failures', 'many'], ['--admin-auth-lockout', '0']]) {
      const r = hush(['store', '--data', join(dir, 'unused'), '--socket', join(dir, 'unused.sock'), flag, value]);
      expect(r.status, `${flag} ${value}`).to.equal(2);
      expect(r.stderr).to.match(new RegExp(`^error: option '${flag} <[a-z]+>' argument '${value}' is invalid`));
    }
  });
});
