/**
 * Joining without trust on first use: the agent checks the CA a store
 * presents against the fingerprint in the token before it sends anything.
 * Real TLS servers on loopback; certificates from src/pki.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { fetchVerifiedStoreCa, joinStore, parseStoreAddress } from '../../src/agent/index.js';
import { certFingerprint, readCertIdentity } from '../../src/pki/index.js';
import { rejection } from '../helpers/assert.js';
import { FakeStore } from '../helpers/agent-fake-store.js';
import { newTestCa, type TestCa } from '../helpers/test-ca.js';
import { until } from '../helpers/until.js';

interface TlsStore {
  server: tls.Server;
  port: number;
  /** Bytes any client sent after the handshake: must stay empty for a refused CA. */
  received: Buffer[];
}

async function tlsStore(ca: TestCa, opts: { sendCa?: boolean; maxVersion?: tls.SecureVersion } = {}): Promise<TlsStore> {
  const cert = ca.serverCert();
  const received: Buffer[] = [];
  const server = tls.createServer({ key: cert.keyPem, cert: opts.sendCa === false ? cert.certPem : cert.certPem + ca.certPem, ALPNProtocols: ['h2'], maxVersion: opts.maxVersion });
  server.on('secureConnection', (socket) => {
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, received };
}

describe('agent join: CA fingerprint check before anything is sent', function () {
  this.timeout(30_000);
  let ca: TestCa;
  let impostorCa: TestCa;
  const servers: tls.Server[] = [];

  before(() => {
    ca = newTestCa();
    impostorCa = newTestCa({ commonName: 'hush cluster CA' }); // same name, different key: only the fingerprint tells them apart
  });
  after(() => {
    for (const s of servers) s.close();
  });

  it('accepts the store whose CA matches the token and returns that CA', async () => {
    const store = await tlsStore(ca);
    servers.push(store.server);
    const caPem = await fetchVerifiedStoreCa(parseStoreAddress(`127.0.0.1:${store.port}`), ca.fingerprint);
    expect(certFingerprint(caPem)).to.equal(ca.fingerprint);
    expect(readCertIdentity(caPem).commonName).to.equal('hush cluster CA');
  });

  it('accepts the fingerprint in upper case too', async () => {
    const store = await tlsStore(ca);
    servers.push(store.server);
    const caPem = await fetchVerifiedStoreCa(parseStoreAddress(`localhost:${store.port}`), ca.fingerprint.toUpperCase());
    expect(certFingerprint(caPem)).to.equal(ca.fingerprint);
  });

  it('refuses an impostor CA with a message naming both fingerprints, having sent nothing', async () => {
    const store = await tlsStore(impostorCa);
    servers.push(store.server);
    const expected = ca.fingerprint;
    const err = await rejection(fetchVerifiedStoreCa(parseStoreAddress(`127.0.0.1:${store.port}`), expected));
    expect(err.message).to.equal(
      `the store at 127.0.0.1:${store.port} presents CA ${impostorCa.fingerprint}, but the join token expects ${expected}: wrong store or an impostor`,
    );
    await new Promise((r) => setTimeout(r, 100));
    expect(Buffer.concat(store.received).length).to.equal(0);
    // Positive control: bytes a client does send after the handshake are seen, so the empty result above means nothing was sent.
    const probe = tls.connect({ host: '127.0.0.1', port: store.port, rejectUnauthorized: false, ALPNProtocols: ['h2'] }, () => probe.end('probe'));
    probe.on('error', () => {});
    await until(() => Buffer.concat(store.received).toString() === 'probe', 'the probe bytes at the store', 5_000);
  });

  it('refuses a store that does not present its CA certificate', async () => {
    const store = await tlsStore(ca, { sendCa: false });
    servers.push(store.server);
    const err = await rejection(fetchVerifiedStoreCa(parseStoreAddress(`127.0.0.1:${store.port}`), ca.fingerprint));
    expect(err.message).to.match(/did not present its CA certificate/);
  });

  it('refuses a store that speaks at most TLS 1.2, even with the right CA: the Join is never sent', async () => {
    const store = await tlsStore(ca, { maxVersion: 'TLSv1.2' });
    servers.push(store.server);
    const refusedHandshakes: string[] = [];
    store.server.on('tlsClientError', (err: Error) => refusedHandshakes.push(err.message));
    const err = await rejection(joinStore({ address: parseStoreAddress(`127.0.0.1:${store.port}`), token: ca.joinToken() }));
    expect(err.message).to.match(/127\.0\.0\.1:\d+/);
    // The CA check (which sends nothing) got through; the Join channel's handshake did not, and nothing reached the store.
    expect(refusedHandshakes.join('\n')).to.match(/unsupported protocol|protocol version/i);
    expect(Buffer.concat(store.received).length).to.equal(0);
  });

  it('says so when nothing listens', async () => {
    const store = await tlsStore(ca);
    const port = store.port;
    store.server.close();
    await once(store.server, 'close');
    const err = await rejection(fetchVerifiedStoreCa(parseStoreAddress(`127.0.0.1:${port}`), ca.fingerprint));
    expect(err.message).to.equal(`cannot reach the store at 127.0.0.1:${port}: ECONNREFUSED`);
  });

  describe('the Join call (against a fake gRPC store)', () => {
    let store: FakeStore;
    before(async () => {
      store = await new FakeStore({ ca }).start();
    });
    after(() => store.kill());

    it('joins: a certificate for the returned node id, for a key that only the agent has', async () => {
      const identity = await joinStore({ address: parseStoreAddress(store.address), token: store.token, name: 'n1', hostname: 'host-1', labels: { zone: 'eu' } });
      const cert = readCertIdentity(identity.certPem);
      expect(cert.commonName).to.equal(identity.nodeId);
      expect(cert.role).to.equal('node');
      expect(identity.keyPem).to.match(/BEGIN PRIVATE KEY/);
      const request = store.joins.at(-1)!;
      expect(request).to.include({ name: 'n1', hostname: 'host-1' });
      expect(request.labels).to.deep.equal({ zone: 'eu' });
      expect(request.csr_pem).to.match(/BEGIN CERTIFICATE REQUEST/);
      expect(JSON.stringify(request)).to.not.include('PRIVATE KEY');
    });

    it('never calls Join on a store whose CA does not match the token', async () => {
      const joinsBefore = store.joins.length;
      const otherToken = impostorCa.joinToken(store.joinSecret);
      const err = await rejection(joinStore({ address: parseStoreAddress(store.address), token: otherToken }));
      expect(err.message).to.match(/presents CA [0-9a-f]{64}, but the join token expects [0-9a-f]{64}: wrong store or an impostor/);
      expect(store.joins.length).to.equal(joinsBefore);
    });

    it('reports a token the store refuses (right CA, wrong secret)', async () => {
      const tampered = ca.joinToken();
      const err = await rejection(joinStore({ address: parseStoreAddress(store.address), token: tampered }));
      expect(err.message).to.equal(`the store at ${store.address} refused to join this node: invalid join token`);
    });

    it('rejects a malformed token before connecting', async () => {
      const err = await rejection(joinStore({ address: parseStoreAddress(store.address), token: 'HUSH-1-nope' }));
      expect(err.message).to.match(/malformed join token/);
    });
  });
});

describe('agent store address parsing', () => {
  it('reads HOST:PORT, [IPv6]:PORT and HOST', () => {
    expect(parseStoreAddress('store.example:1234')).to.deep.include({ host: 'store.example', port: 1234, target: 'store.example:1234' });
    expect(parseStoreAddress('[::1]:99')).to.deep.include({ host: '::1', port: 99, target: '[::1]:99' });
    expect(parseStoreAddress('10.0.0.1')).to.deep.include({ host: '10.0.0.1', port: 2477 });
    for (const bad of ['', ':80', 'a:b', 'h:70000', '[h]:1', 'a:1:2']) expect(() => parseStoreAddress(bad), bad).to.throw(/store address/);
  });
});
