/**
 * The certificates from src/pki in a real mutual TLS 1.3 handshake with
 * node:tls on loopback, the way the store and agents will use them.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import type { KeyAndCert } from '../../src/pki/index.js';
import { foreignClientCert, newTestCa, type TestCa } from '../helpers/test-ca.js';

interface ServerSaw {
  cn: string;
  ou: string;
  protocol: string | null;
}

interface Outcome {
  /** What the server wrote back after the handshake; undefined if the client never got it. */
  serverSaw?: ServerSaw;
  clientError?: Error;
  /** Error the server reported for this client, if it refused it. */
  serverError?: Error;
  serverCertCn?: string;
}

describe('pki certificates in mutual TLS 1.3', () => {
  let ca: TestCa;
  let server: tls.Server;
  let port: number;
  let refusals: Error[];
  let accepted: number;

  before(async () => {
    ca = newTestCa();
    const serverCert = ca.serverCert(['store.test']);
    server = tls.createServer({
      key: serverCert.keyPem,
      cert: serverCert.certPem,
      ca: ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    });
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      accepted++;
      const subject = socket.getPeerCertificate().subject;
      socket.end(JSON.stringify({ cn: subject.CN, ou: subject.OU, protocol: socket.getProtocol() }));
    });
    server.on('tlsClientError', (err: Error) => refusals.push(err));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  beforeEach(() => {
    refusals = [];
    accepted = 0;
  });

  after(async () => {
    server.close();
    await once(server, 'close');
  });

  async function connect(client: Partial<KeyAndCert>, trust: string = ca.certPem): Promise<Outcome> {
    const socket = tls.connect({
      host: '127.0.0.1', // checked against the server certificate's IP SAN
      port,
      ca: trust,
      ...(client.certPem ? { cert: client.certPem, key: client.keyPem } : {}),
      minVersion: 'TLSv1.3',
    });
    const outcome: Outcome = {};
    let data = '';
    socket.setEncoding('utf8');
    socket.on('secureConnect', () => {
      outcome.serverCertCn = String(socket.getPeerCertificate().subject.CN);
    });
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', (err) => (outcome.clientError = err));
    // Not events.once: it would reject on the client's 'error', which is an outcome here.
    await new Promise((resolve) => socket.on('close', resolve));
    if (data) outcome.serverSaw = JSON.parse(data) as ServerSaw;
    // A refusal can reach the server's 'tlsClientError' just after the client has closed.
    for (let i = 0; i < 200 && refusals.length === 0 && !outcome.serverSaw; i++) await new Promise((r) => setTimeout(r, 10));
    outcome.serverError = refusals[0];
    return outcome;
  }

  it('accepts an admin client certificate from the cluster CA and sees its CN and role', async () => {
    const outcome = await connect(ca.clientCert('alice', 'admin'));
    expect(outcome.clientError).to.equal(undefined);
    expect(outcome.serverError).to.equal(undefined);
    expect(outcome.serverSaw).to.deep.equal({ cn: 'alice', ou: 'admin', protocol: 'TLSv1.3' });
    expect(outcome.serverCertCn).to.equal('hush store');
    expect(accepted).to.equal(1);
  });

  it('accepts a node certificate signed from an agent CSR', async () => {
    const outcome = await connect(ca.nodeCert('node-9', { validitySeconds: 300 }));
    expect(outcome.serverSaw).to.deep.equal({ cn: 'node-9', ou: 'node', protocol: 'TLSv1.3' });
    expect(accepted).to.equal(1);
  });

  it('refuses a client certificate from a foreign CA', async () => {
    const outcome = await connect(foreignClientCert());
    // TLS 1.3 lets the client finish its side of the handshake; node's server then checks the
    // client certificate, finds it unauthorized and drops the connection without serving it.
    expect(accepted).to.equal(0);
    expect(outcome.serverSaw).to.equal(undefined);
    // The client trusted the server and finished its side (it saw the server's certificate, and has no error of its own)...
    expect(outcome.serverCertCn).to.equal('hush store');
    expect(outcome.clientError).to.equal(undefined);
    // ...and the server ended the handshake before it was complete (its error, not any error).
    expect(outcome.serverError?.message).to.equal('socket hang up');
    expect((outcome.serverError as NodeJS.ErrnoException | undefined)?.code).to.equal('ECONNRESET');
  });

  it('refuses a client without a certificate', async () => {
    const outcome = await connect({});
    expect(accepted).to.equal(0);
    expect(outcome.serverSaw).to.equal(undefined);
    expect((outcome.serverError as NodeJS.ErrnoException | undefined)?.code).to.equal('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');
    expect(outcome.clientError?.message).to.match(/certificate required/);
  });

  it('lets the client refuse a server whose CA it does not trust', async () => {
    const outcome = await connect(ca.clientCert('alice', 'admin'), newTestCa().certPem);
    expect(accepted).to.equal(0);
    expect(outcome.serverSaw).to.equal(undefined);
    expect(outcome.clientError?.message).to.match(/self.signed|unable to verify|issuer certificate/i);
  });
});
