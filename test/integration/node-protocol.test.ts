/**
 * The node protocol's gate, probed with a raw gRPC client against a real
 * store: who may Join, Renew and open a Session, and who is refused before
 * any secret flows.
 */
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { join } from 'node:path';
import { nodeServiceClient, STORE_TLS_NAME, type JoinResponse, type StoreMessage } from '../../src/protocol/index.js';
import * as pki from '../../src/pki/index.js';
import { closeClients } from '../helpers/http.js';
import { hush, startStoreProcess, stopProcess, waitForCluster, type StoreProcess } from '../helpers/hush-process.js';
import { newTestCa } from '../helpers/test-ca.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

const OPTIONS = { 'grpc.ssl_target_name_override': STORE_TLS_NAME, 'grpc.default_authority': STORE_TLS_NAME };

describe('node protocol gate (integration)', function () {
  this.timeout(60_000);
  let dir: string;
  let store: StoreProcess;
  let address: string;
  let caPem: string;

  const client = (creds: grpc.ChannelCredentials) => new (nodeServiceClient())(address, creds, OPTIONS) as unknown as Client;
  const clientWith = (key?: string, cert?: string) => client(grpc.credentials.createSsl(Buffer.from(caPem), key ? Buffer.from(key) : null, cert ? Buffer.from(cert) : null));

  /** Opens a Session, says Hello, and resolves with the first message or the status it was refused with. */
  const session = (c: Client) =>
    new Promise<{ message?: StoreMessage; status?: grpc.StatusObject }>((resolve) => {
      const stream = c.Session() as grpc.ClientDuplexStream<unknown, StoreMessage>;
      stream.on('data', (message: StoreMessage) => {
        resolve({ message });
        stream.cancel();
      });
      stream.on('error', (err: grpc.ServiceError) => resolve({ status: err }));
      stream.write({ body: 'hello', hello: { containers: [], last_revision: 0 } });
    });

  /** The join token the store holds now (a test may rotate it: each asks for the current one). */
  const currentToken = () => hush(['join-token'], { env: { HUSH_HOME: dir, HUSH_HOST: '' } }).stdout.trim();

  const joinNode = (c: Client, joinToken: string, keyPem: string) =>
    new Promise<{ reply?: JoinResponse; error?: grpc.ServiceError }>((resolve) => {
      c.Join({ token: joinToken, csr_pem: pki.createCsr(keyPem, 'ignored'), name: 'probe', hostname: 'probe', labels: {} }, (error: grpc.ServiceError | null, reply: JoinResponse) =>
        resolve(error ? { error } : { reply }),
      );
    });

  before(async () => {
    dir = await tempDir('hush-gate-');
    store = await startStoreProcess({ data: join(dir, 'data'), socket: join(dir, 'admin.sock'), home: dir, extraArgs: ['--listen', '127.0.0.1:0', '--admin', '', '--node-cert-ttl', '3'] });
    address = (await waitForCluster(dir)).nodeAddress;
    caPem = await readFile(join(dir, 'ca.pem'), 'utf8');
  });
  after(async () => {
    closeClients();
    await stopProcess(store);
    await removeDir(dir);
  });

  it('lets a node with a valid token join, then open a session with its certificate', async () => {
    const key = pki.generateKeyPair().keyPem;
    const { reply } = await joinNode(clientWith(), currentToken(), key);
    expect(reply?.node_id).to.match(/^[a-z0-9]{25}$/);
    expect(pki.readCertIdentity(reply!.certificate_pem)).to.include({ commonName: reply!.node_id, role: 'node' });
    const { message } = await session(clientWith(key, reply!.certificate_pem));
    expect(message?.body).to.equal('snapshot');
  });

  it('refuses a session without a client certificate', async () => {
    const { status } = await session(clientWith());
    expect(status?.code).to.equal(grpc.status.UNAUTHENTICATED);
  });

  it('refuses a session with a certificate from another CA, even one naming a real node', async () => {
    const key = pki.generateKeyPair().keyPem;
    const { reply } = await joinNode(clientWith(), currentToken(), key);
    const forged = newTestCa().nodeCert(reply!.node_id, { keyPem: key }).certPem;
    const { status } = await session(clientWith(key, forged));
    expect(status?.code).to.equal(grpc.status.UNAUTHENTICATED);
  });

  it('refuses a session with an admin certificate of this cluster', async () => {
    const { status } = await session(clientWith(await readFile(join(dir, 'key.pem'), 'utf8'), await readFile(join(dir, 'cert.pem'), 'utf8')));
    expect(status?.code).to.equal(grpc.status.PERMISSION_DENIED);
    expect(status?.details).to.match(/cannot open a node session/);
  });

  it('refuses a session with an expired node certificate', async () => {
    const key = pki.generateKeyPair().keyPem;
    const { reply } = await joinNode(clientWith(), currentToken(), key);
    await new Promise((r) => setTimeout(r, 3500));
    const { status } = await session(clientWith(key, reply!.certificate_pem));
    expect(status?.code).to.equal(grpc.status.UNAUTHENTICATED);
  });

  it('refuses to join with a tampered token, and with a rotated-away one', async () => {
    const key = pki.generateKeyPair().keyPem;
    const token = currentToken();
    const tampered = token.slice(0, -1) + (token.endsWith('a') ? 'b' : 'a');
    expect((await joinNode(clientWith(), tampered, key)).error?.code).to.equal(grpc.status.PERMISSION_DENIED);
    const rotated = hush(['join-token', '--rotate'], { env: { HUSH_HOME: dir, HUSH_HOST: '' } }).stdout.trim();
    expect(rotated).to.not.equal(token);
    const stale = (await joinNode(clientWith(), token, key)).error;
    expect(stale?.code).to.equal(grpc.status.PERMISSION_DENIED);
    expect(stale?.details).to.match(/^join token is not valid for node name "probe" \(wrong, rotated away, or bound to another name\)/);
    expect((await joinNode(clientWith(), rotated, key)).reply?.node_id).to.match(/^[a-z0-9]{25}$/);
  });

  it('refuses a removed (revoked) node, and its renewal', async () => {
    const key = pki.generateKeyPair().keyPem;
    const { reply } = await joinNode(clientWith(), currentToken(), key);
    const c = clientWith(key, reply!.certificate_pem);
    expect(hush(['node', 'rm', reply!.node_id], { env: { HUSH_HOME: dir, HUSH_HOST: '' } }).status).to.equal(0);
    const { status } = await session(c);
    expect(status?.code).to.equal(grpc.status.PERMISSION_DENIED);
    expect(status?.details).to.match(/revoked/);
    const renewal = await new Promise<grpc.ServiceError | null>((resolve) => c.Renew({ csr_pem: pki.createCsr(key, 'x') }, (err: grpc.ServiceError | null) => resolve(err)));
    expect(renewal?.code).to.equal(grpc.status.PERMISSION_DENIED);
  });

  it('speaks TLS 1.3 only', async () => {
    const [host, port] = address.split(':');
    const handshake = (maxVersion: tls.SecureVersion) =>
      new Promise<string>((resolve) => {
        const socket = tls.connect({ host, port: Number(port), maxVersion, ca: caPem, servername: STORE_TLS_NAME, ALPNProtocols: ['h2'] }, () => {
          resolve(`connected with ${socket.getProtocol()}`);
          socket.end();
        });
        socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      });
    // Positive control: the same client, allowed TLS 1.3, gets through the handshake.
    expect(await handshake('TLSv1.3')).to.equal('connected with TLSv1.3');
    // Offered at most TLS 1.2, the store answers with the protocol_version alert.
    expect(await handshake('TLSv1.2')).to.equal('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
  });
});
