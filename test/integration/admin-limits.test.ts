/**
 * The admin listeners' limits, each asserted on its own against a real store
 * (unix socket and mutual-TLS HTTPS): header size (431), body size (413),
 * JSON nesting (400), slow clients (slowloris) that cannot hold the HTTPS
 * listener, and what the HTTPS listener refuses at the TLS layer (TLS 1.2,
 * a node's certificate, an expired one). The slow clients are sized for the
 * 2-core, 20,000-descriptor test machine: 240 of them from this process.
 *
 * HUSH_SECURITY_LONG=1 (set by `npm run test:security`) also waits for the
 * store to close every slow client (10 s handshake and header timeouts).
 */
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request } from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { nodeServiceClient, STORE_TLS_NAME, type JoinResponse } from '../../src/protocol/index.js';
import * as pki from '../../src/pki/index.js';
import { revisionOf } from '../helpers/admin-routes.js';
import { call, closeClients } from '../helpers/http.js';
import { hush, startStoreProcess, stopProcess, waitForCluster, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const LONG = process.env.HUSH_SECURITY_LONG === '1';

interface ClientTls {
  ca: Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  maxVersion?: tls.SecureVersion;
}

/** One request over a fresh HTTPS connection: status and text, or the connection error's code. */
function httpsRequest(url: string, t: ClientTls, opts: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<{ status: number; text: string } | string> {
  return new Promise((resolve) => {
    const { hostname, port } = new URL(url);
    const req = request({ host: hostname, port, path: opts.path ?? '/v1/secrets', method: opts.method ?? 'GET', agent: false, headers: opts.headers, ...t }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(`${err.code ?? ''} ${err.message}`));
    req.end(opts.body);
  });
}

/** The same over the unix socket, with any headers (the shared client adds its own). */
function socketRequest(socketPath: string, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, path, method: 'GET', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('admin listener limits and TLS refusals (integration)', function () {
  this.timeout(120_000);
  let dir: string;
  let socket: string;
  let store: StoreProcess;
  let adminUrl: string;
  let nodeAddress: string;
  let admin: ClientTls;
  /** Issued at the start with the shortest lifetime (10 s): expired by the time the last test looks. */
  let expiring: { certPem: string; keyPem: string; notAfter: string };

  const issue = async (name: string, ttlSeconds: number) => {
    const r = await call<{ certPem: string; keyPem: string; notAfter: string }>(socket, 'POST', '/v1/certs', { name, role: 'auditor', ttlSeconds });
    expect(r.status, r.text).to.equal(201);
    return r.body;
  };

  before(async () => {
    dir = await tempDir('hush-limits-');
    socket = join(dir, 'admin.sock');
    store = await startStoreProcess({ data: join(dir, 'data'), socket, home: dir, extraArgs: ['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'] });
    const cluster = await waitForCluster(dir);
    adminUrl = cluster.adminAddress;
    nodeAddress = cluster.nodeAddress;
    admin = { ca: await readFile(join(dir, 'ca.pem')), cert: await readFile(join(dir, 'cert.pem')), key: await readFile(join(dir, 'key.pem')) };
    expect(adminUrl).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
    expiring = await issue('expiring', 10);
    // Positive control for the expiry test: it works while valid.
    expect(await httpsRequest(adminUrl, { ca: admin.ca, cert: expiring.certPem, key: expiring.keyPem })).to.have.property('status', 200);
  });
  after(async () => {
    closeClients();
    if (store) await stopProcess(store);
    if (dir) await removeDir(dir);
  });

  it('headers over 16 KiB: 431 on the HTTPS listener and on the unix socket; 8 KiB pass (positive control)', async () => {
    const big = { 'x-padding': 'a'.repeat(17 * 1024) };
    const fine = { 'x-padding': 'a'.repeat(8 * 1024) };
    expect(await httpsRequest(adminUrl, admin, { headers: big })).to.have.property('status', 431);
    expect(await httpsRequest(adminUrl, admin, { headers: fine })).to.have.property('status', 200);
    expect(await socketRequest(socket, '/v1/secrets', big)).to.equal(431);
    expect(await socketRequest(socket, '/v1/secrets', fine)).to.equal(200);
    // Many small headers add up the same way.
    const many = Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`x-h${i}`, 'v'.repeat(30)]));
    expect(await socketRequest(socket, '/v1/secrets', many)).to.equal(431);
  });

  it('a body over the limit: 413 with a clear message; nothing created', async () => {
    const before = await revisionOf(socket);
    const reply = await call<{ error: { code: string; message: string } }>(socket, 'POST', '/v1/secrets', { name: 'huge', data: Buffer.alloc(12 << 20, 1).toString('base64') });
    expect(reply.status).to.equal(413);
    expect(reply.body.error.message).to.match(/request body is larger than \d+ bytes/);
    expect(await revisionOf(socket)).to.equal(before);
  });

  it('JSON nested 20,000 deep (arrays, objects, both): 400 with a clear message; nothing created; 3 deep is read (positive control)', async () => {
    const before = await revisionOf(socket);
    for (const body of [`${'['.repeat(20_000)}${']'.repeat(20_000)}`, `${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`, `{"name":"n","data":${'[{"x":'.repeat(10_000)}1${'}]'.repeat(10_000)}}`]) {
      const reply = await call<{ error: { code: string; message: string } }>(socket, 'POST', '/v1/secrets', undefined, body);
      expect(reply.status, reply.text.slice(0, 300)).to.equal(400);
      expect(reply.body.error.code).to.equal('bad_request');
      expect(reply.body.error.message.length).to.be.below(300);
    }
    expect(await revisionOf(socket)).to.equal(before);
    const shallow = await call(socket, 'POST', '/v1/secrets', undefined, '{"name":"n","data":[[[1]]]}');
    expect(shallow.status).to.equal(400);
    expect(shallow.text).to.match(/data/);
  });

  it('slowloris: 120 clients stuck in the TLS handshake and 120 sending headers byte by byte do not hold the HTTPS listener; a real request still succeeds', async () => {
    const { hostname, port } = new URL(adminUrl);
    const sockets: net.Socket[] = [];
    let closed = 0;
    const track = (s: net.Socket) => {
      sockets.push(s);
      s.on('error', () => undefined);
      s.on('close', () => closed++);
    };
    const timers: NodeJS.Timeout[] = [];
    try {
      // A TLS record header and then nothing more: the handshake never completes.
      for (let i = 0; i < 120; i++) {
        const s = net.connect(Number(port), hostname);
        track(s);
        s.on('connect', () => s.write(Buffer.from([0x16, 0x03, 0x01])));
      }
      // Authenticated, then a request whose headers never end: one byte every 500 ms.
      const opened: Promise<void>[] = [];
      for (let i = 0; i < 120; i++) {
        const s = tls.connect({ host: hostname, port: Number(port), ca: admin.ca, cert: admin.cert, key: admin.key, servername: 'localhost', checkServerIdentity: () => undefined });
        track(s);
        opened.push(
          new Promise<void>((resolve) =>
            s.once('secureConnect', () => {
              s.write('GET /v1/secrets HTTP/1.1\r\nHost: x\r\n');
              timers.push(setInterval(() => s.writable && s.write('X'), 500));
              resolve();
            }).once('error', () => resolve()),
          ),
        );
      }
      await Promise.all(opened);
      expect(closed, 'the slow clients are connected').to.be.below(240);
      // A legitimate request gets through while they hang on.
      const reply = await httpsRequest(adminUrl, admin);
      expect(reply).to.have.property('status', 200);
      expect(await revisionOf(socket)).to.be.a('number');
      if (LONG) {
        // The store closes every one of them (10 s handshake and header timeouts).
        await until(() => closed === 240, 'the store to close all 240 slow clients', 60_000);
        expect(await httpsRequest(adminUrl, admin)).to.have.property('status', 200);
      }
    } finally {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
    }
  });

  describe('refused by the HTTPS listener', () => {
    it('TLS 1.2 and below: refused with the protocol_version alert; the same client with TLS 1.3 passes (positive control)', async () => {
      expect(await httpsRequest(adminUrl, { ...admin, maxVersion: 'TLSv1.3' })).to.have.property('status', 200);
      expect(await httpsRequest(adminUrl, { ...admin, maxVersion: 'TLSv1.2' })).to.match(/^EPROTO .*tlsv1 alert protocol version/);
      expect(await httpsRequest(adminUrl, { ...admin, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' } as ClientTls)).to.match(/^EPROTO .*(tlsv1 alert protocol version|unsupported protocol|no protocols available)/);
    });

    it("a node's certificate of this cluster (the wrong role): refused, nothing read", async () => {
      const token = hush(['join-token'], { env: { HUSH_HOME: dir, HUSH_HOST: '' } }).stdout.trim();
      const key = pki.generateKeyPair().keyPem;
      const c = new (nodeServiceClient())(nodeAddress, grpc.credentials.createSsl(admin.ca), { 'grpc.ssl_target_name_override': STORE_TLS_NAME, 'grpc.default_authority': STORE_TLS_NAME }) as unknown as grpc.Client & { Join: (...a: unknown[]) => void };
      const reply = await new Promise<JoinResponse>((resolve, reject) =>
        c.Join({ token, csr_pem: pki.createCsr(key, 'x'), name: 'rolecheck', hostname: 'h', labels: {} }, (err: grpc.ServiceError | null, r: JoinResponse) => (err ? reject(err) : resolve(r))),
      );
      c.close();
      const result = await httpsRequest(adminUrl, { ca: admin.ca, cert: reply.certificate_pem, key });
      if (typeof result === 'string') expect(result).to.match(/^E/);
      else {
        expect(result.status).to.be.oneOf([401, 403]);
        expect(result.text).to.match(/"error"/);
      }
    });

    it('an expired admin certificate of this cluster (valid when the suite began): refused; a valid one of the same role passes (positive control)', async () => {
      const valid = await issue('still-valid', 3600);
      await until(() => Date.now() > Date.parse(expiring.notAfter) + 1_000, 'the short certificate to expire', 20_000);
      const refused = await httpsRequest(adminUrl, { ca: admin.ca, cert: expiring.certPem, key: expiring.keyPem });
      if (typeof refused === 'string') expect(refused).to.match(/^E/);
      else expect(refused.status).to.equal(401);
      expect(await httpsRequest(adminUrl, { ca: admin.ca, cert: valid.certPem, key: valid.keyPem })).to.have.property('status', 200);
    });
  });
});
