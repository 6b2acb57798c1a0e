/**
 * CA rotation's trust in real TLS 1.3 handshakes (node:tls, OpenSSL): a store
 * chain of new leaf + cross certificate + both roots serves peers that trust
 * only the old CA, only the new one, and agents joining with a token for
 * either; a successor is accepted only when the trusted CA vouches for it.
 */
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import { parseStoreAddress } from '../../src/agent/address.js';
import { fetchVerifiedStoreCa } from '../../src/agent/store-ca.js';
import { certFingerprint, createClusterCa, createSuccessorCa, issueClientCert, issueServerCert, verifyCaSuccession, verifyIssuedBy, type KeyAndCert } from '../../src/pki/index.js';

interface Outcome {
  ok: boolean;
  error?: string;
}

describe('CA rotation: cross-signed successor in TLS', () => {
  const old = createClusterCa();
  const { next, crossPem } = createSuccessorCa(old);
  let server: tls.Server;
  let port: number;

  before(async () => {
    const leaf = issueServerCert(next, { hosts: ['127.0.0.1'] });
    server = tls.createServer({
      key: leaf.keyPem,
      // What the store presents during a rotation (ClusterPki.serverCredentials).
      cert: leaf.certPem + crossPem + old.certPem + next.certPem,
      ca: old.certPem + next.certPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    });
    server.on('secureConnection', (socket: tls.TLSSocket) => socket.end('ok'));
    server.on('tlsClientError', () => {});
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.close();
    await once(server, 'close');
  });

  async function connect(trust: string, client?: KeyAndCert): Promise<Outcome> {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: trust, ...(client ? { cert: client.certPem, key: client.keyPem } : {}), minVersion: 'TLSv1.3' });
    let data = '';
    let error: string | undefined;
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (data += c));
    socket.on('error', (err) => (error = err.message));
    await new Promise((resolve) => socket.on('close', resolve));
    return { ok: data === 'ok', ...(error ? { error } : {}) };
  }

  it('keeps the old name, so the old CA (pathLen 0) may vouch for the new one', () => {
    expect(new X509Certificate(next.certPem).subject).to.equal(new X509Certificate(old.certPem).subject);
    expect(certFingerprint(next.certPem)).not.to.equal(certFingerprint(old.certPem));
  });

  it('serves a client that trusts only the old CA, through the cross certificate', async () => {
    expect(await connect(old.certPem, issueClientCert(old, { commonName: 'alice', role: 'admin' }))).to.deep.equal({ ok: true });
  });

  it('serves a client that trusts only the new CA, with a new-CA client certificate', async () => {
    expect(await connect(next.certPem, issueClientCert(next, { commonName: 'bob', role: 'admin' }))).to.deep.equal({ ok: true });
  });

  it('the positive control: a client trusting a third CA is refused', async () => {
    const outcome = await connect(createClusterCa().certPem, issueClientCert(next, { commonName: 'bob', role: 'admin' }));
    expect(outcome.ok).to.equal(false);
    expect(outcome.error).to.match(/certificate|self.signed|issuer/i);
  });

  it('lets an agent with a token for either CA find that CA in the presented chain', async () => {
    const address = parseStoreAddress(`127.0.0.1:${port}`);
    expect(certFingerprint(await fetchVerifiedStoreCa(address, certFingerprint(old.certPem)))).to.equal(certFingerprint(old.certPem));
    expect(certFingerprint(await fetchVerifiedStoreCa(address, certFingerprint(next.certPem)))).to.equal(certFingerprint(next.certPem));
    const foreign = certFingerprint(createClusterCa().certPem);
    await fetchVerifiedStoreCa(address, foreign).then(
      () => expect.fail('a foreign fingerprint was accepted'),
      (err: Error) => expect(err.message).to.include(`join token expects ${foreign}`),
    );
  });

  it('a leaf of the new CA verifies against the new CA, not against the old one directly', () => {
    const leaf = issueClientCert(next, { commonName: 'n1', role: 'admin' });
    expect(() => verifyIssuedBy(next.certPem, leaf.certPem)).not.to.throw();
    expect(() => verifyIssuedBy(old.certPem, leaf.certPem)).to.throw(/not issued by this cluster's CA/);
  });

  it('accepts a successor only with a cross certificate from the trusted CA for exactly its key', () => {
    expect(() => verifyCaSuccession(old.certPem, next.certPem, crossPem)).not.to.throw();
    const other = createSuccessorCa(old);
    // A cross certificate for another key, a successor vouched for by another CA, and the cross certificate posing as the CA.
    expect(() => verifyCaSuccession(old.certPem, next.certPem, other.crossPem)).to.throw(/another key or name/);
    const stranger = createClusterCa();
    expect(() => verifyCaSuccession(stranger.certPem, next.certPem, crossPem)).to.throw(/not signed by the trusted CA/);
    expect(() => verifyCaSuccession(old.certPem, crossPem, crossPem)).to.throw(/not a self-signed CA/);
  });
});
