/**
 * A small stand-in for the store's side of the node protocol, for testing the
 * agent alone: a real gRPC server over real (mutual) TLS with a real cluster
 * CA from src/pki, and a toy entitlement model (services with grants and a
 * label constraint; a node gets the secrets of services it runs). It is not
 * the store: it exists so the agent's behaviour can be driven and observed
 * message by message.
 */
import * as grpc from '@grpc/grpc-js';
import { randomUUID, X509Certificate } from 'node:crypto';
import {
  nodeServiceDefinition,
  type AgentMessage,
  type JoinRequest,
  type JoinResponse,
  type StoreMessage,
  type WireGrant,
  type WireHello,
  type WireSecretVersion,
  type WireServiceGrants,
} from '../../src/protocol/index.js';
import { newJoinSecret, parseJoinToken, readCertIdentity, secretsEqual, signNodeCsr, type KeyAndCert } from '../../src/pki/index.js';
import { newTestCa, type TestCa } from './test-ca.js';

export interface FakeService {
  grants: WireGrant[];
  /** Placement: returns a refusal reason, or undefined when the node may run it. */
  constraint?: (labels: Record<string, string>) => string | undefined;
}

interface FakeNode {
  id: string;
  labels: Record<string, string>;
  name: string;
}

export interface FakeSession {
  nodeId: string;
  certSerial: string;
  received: AgentMessage[];
  containers: Map<string, string>; // id -> service
  stream: grpc.ServerDuplexStream<AgentMessage, StoreMessage>;
  /** Secret name -> version this session has been sent. */
  sent: Map<string, number>;
  ended: boolean;
}

export interface FakeStoreOptions {
  ca?: TestCa;
  port?: number;
  nodeCertSeconds?: number;
}

export class FakeStore {
  readonly ca: TestCa;
  readonly serverCert: KeyAndCert;
  readonly joinSecret = newJoinSecret();
  readonly nodeCertSeconds: number;
  readonly joins: JoinRequest[] = [];
  readonly renewals: string[] = [];
  readonly sessions: FakeSession[] = [];
  readonly nodes = new Map<string, FakeNode>();
  readonly revoked = new Set<string>();
  readonly services = new Map<string, FakeService>();
  readonly secrets = new Map<string, { version: number; data: Buffer; createdAt: number }>();
  /** When set, container starts get no answer (to test the agent's timeout). */
  silent = false;
  /** When set, sessions are accepted but never answered (no snapshot). */
  mute = false;
  /** When set, a Hello that asks to resume is answered with an empty resumed-start Delta over the revision this returns. */
  resumeOver: ((hello: WireHello) => number) | undefined;
  revision = 1;
  port = 0;
  #server: grpc.Server | undefined;

  constructor(opts: FakeStoreOptions = {}) {
    this.ca = opts.ca ?? newTestCa();
    this.serverCert = this.ca.serverCert();
    this.nodeCertSeconds = opts.nodeCertSeconds ?? 3600;
    this.port = opts.port ?? 0;
  }

  get token(): string {
    return this.ca.joinToken(this.joinSecret);
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  liveSessions(): FakeSession[] {
    return this.sessions.filter((s) => !s.ended);
  }

  async start(): Promise<this> {
    const server = new grpc.Server();
    server.addService(nodeServiceDefinition(), {
      Join: (call: grpc.ServerUnaryCall<JoinRequest, JoinResponse>, cb: grpc.sendUnaryData<JoinResponse>) => this.#join(call, cb),
      Renew: (call: grpc.ServerUnaryCall<{ csr_pem: string }, { certificate_pem: string }>, cb: grpc.sendUnaryData<{ certificate_pem: string }>) =>
        this.#renew(call, cb),
      Session: (stream: grpc.ServerDuplexStream<AgentMessage, StoreMessage>) => this.#session(stream),
    });
    const provider = staticProvider(this.ca.certPem, this.serverCert.certPem + this.ca.certPem, this.serverCert.keyPem);
    const creds = grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${this.port}`, creds, (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.#server = server;
    return this;
  }

  /** Like kill -9: every connection drops at once. */
  kill(): void {
    for (const s of this.sessions) s.ended = true;
    this.#server?.forceShutdown();
    this.#server = undefined;
  }

  setSecret(name: string, data: Buffer): number {
    const version = (this.secrets.get(name)?.version ?? 0) + 1;
    this.secrets.set(name, { version, data, createdAt: Date.now() });
    this.revision++;
    // Push the new version to every session entitled to it, as a rotation would.
    for (const s of this.liveSessions()) {
      if (this.#entitledSecrets(s).has(name)) {
        s.sent.set(name, version);
        this.#write(s, { body: 'delta', delta: { revision: this.revision, upserts: [this.#wire(name)], removals: [], services: [], removed_services: [] } });
      }
    }
    return version;
  }

  revoke(nodeId: string): void {
    this.revoked.add(nodeId);
    for (const s of this.liveSessions()) {
      if (s.nodeId === nodeId) {
        s.ended = true;
        refuse(s.stream, grpc.status.PERMISSION_DENIED, `node ${nodeId} has been revoked`);
      }
    }
  }

  #join(call: grpc.ServerUnaryCall<JoinRequest, JoinResponse>, cb: grpc.sendUnaryData<JoinResponse>): void {
    this.joins.push(call.request);
    let secret: string;
    try {
      secret = parseJoinToken(call.request.token).secret;
    } catch {
      return cb({ code: grpc.status.PERMISSION_DENIED, details: 'malformed join token' });
    }
    if (!secretsEqual(secret, this.joinSecret)) return cb({ code: grpc.status.PERMISSION_DENIED, details: 'invalid join token' });
    const id = `node-${randomUUID().slice(0, 8)}`;
    this.nodes.set(id, { id, labels: call.request.labels, name: call.request.name });
    const certificate_pem = signNodeCsr(this.ca, call.request.csr_pem, { nodeId: id, role: 'node', validitySeconds: this.nodeCertSeconds });
    cb(null, { node_id: id, certificate_pem, ca_pem: this.ca.certPem });
  }

  #renew(call: grpc.ServerUnaryCall<{ csr_pem: string }, { certificate_pem: string }>, cb: grpc.sendUnaryData<{ certificate_pem: string }>): void {
    const peer = peerOf(call);
    if (!peer) return cb({ code: grpc.status.UNAUTHENTICATED, details: 'node certificate required' });
    if (this.revoked.has(peer.nodeId)) return cb({ code: grpc.status.PERMISSION_DENIED, details: `node ${peer.nodeId} has been revoked` });
    this.renewals.push(peer.nodeId);
    cb(null, { certificate_pem: signNodeCsr(this.ca, call.request.csr_pem, { nodeId: peer.nodeId, role: 'node', validitySeconds: this.nodeCertSeconds }) });
  }

  #session(stream: grpc.ServerDuplexStream<AgentMessage, StoreMessage>): void {
    const peer = peerOf(stream);
    if (!peer) {
      refuse(stream, grpc.status.UNAUTHENTICATED, 'node certificate required');
      return;
    }
    if (this.revoked.has(peer.nodeId)) {
      refuse(stream, grpc.status.PERMISSION_DENIED, `node ${peer.nodeId} has been revoked`);
      return;
    }
    const session: FakeSession = { nodeId: peer.nodeId, certSerial: peer.serial, received: [], containers: new Map(), stream, sent: new Map(), ended: false };
    this.sessions.push(session);
    stream.on('data', (message: AgentMessage) => {
      session.received.push(message);
      this.#onMessage(session, message);
    });
    stream.on('error', () => {
      session.ended = true;
    });
    stream.on('end', () => {
      session.ended = true;
      stream.end();
    });
  }

  #onMessage(s: FakeSession, message: AgentMessage): void {
    switch (message.body) {
      case 'hello': {
        if (this.mute) return;
        for (const c of message.hello.containers) s.containers.set(c.id, c.service);
        if (this.resumeOver && message.hello.resume) {
          const delta = { revision: this.revision, base_revision: this.resumeOver(message.hello), upserts: [], removals: [], services: [], removed_services: [] };
          this.#write(s, { body: 'delta', delta });
          return;
        }
        const secrets = [...this.#entitledSecrets(s)].map((name) => this.#wire(name));
        for (const w of secrets) s.sent.set(w.name, w.version);
        this.#write(s, { body: 'snapshot', snapshot: { revision: this.revision, secrets, services: this.#runningServices(s) } });
        return;
      }
      case 'container_start': {
        if (this.silent) return;
        const { request_id, container } = message.container_start;
        const decide = (allowed: boolean, reason: string) =>
          this.#write(s, { body: 'decision', decision: { request_id, allowed, reason, revision: this.revision } });
        const service = this.services.get(container.service);
        if (!service) return decide(false, `unknown service "${container.service}"`);
        const refusal = service.constraint?.(this.nodes.get(s.nodeId)?.labels ?? {});
        if (refusal) return decide(false, refusal);
        s.containers.set(container.id, container.service);
        this.#pushEntitlement(s);
        return decide(true, '');
      }
      case 'container_stop':
        s.containers.delete(message.container_stop.container_id);
        this.#pushEntitlement(s);
        return;
      default:
        return;
    }
  }

  /** Sends the difference between what the session was sent and what it is entitled to now. */
  #pushEntitlement(s: FakeSession): void {
    const entitled = this.#entitledSecrets(s);
    const upserts: WireSecretVersion[] = [];
    for (const name of entitled) {
      if (s.sent.get(name) !== this.secrets.get(name)!.version) {
        upserts.push(this.#wire(name));
        s.sent.set(name, this.secrets.get(name)!.version);
      }
    }
    const removals = [...s.sent.keys()].filter((name) => !entitled.has(name));
    for (const name of removals) s.sent.delete(name);
    const running = new Set(s.containers.values());
    const removed_services = [...this.services.keys()].filter((name) => !running.has(name));
    this.revision++;
    this.#write(s, { body: 'delta', delta: { revision: this.revision, upserts, removals, services: this.#runningServices(s), removed_services } });
  }

  #runningServices(s: FakeSession): WireServiceGrants[] {
    return [...new Set(s.containers.values())].filter((name) => this.services.has(name)).map((name) => ({ service: name, grants: this.services.get(name)!.grants }));
  }

  #entitledSecrets(s: FakeSession): Set<string> {
    const names = new Set<string>();
    for (const service of new Set(s.containers.values())) {
      for (const g of this.services.get(service)?.grants ?? []) if (this.secrets.has(g.source)) names.add(g.source);
    }
    return names;
  }

  #wire(name: string): WireSecretVersion {
    const secret = this.secrets.get(name)!;
    // A copy: the agent zeroes what it receives, and the fake keeps the original for later snapshots.
    return { name, version: secret.version, data: Buffer.from(secret.data), created_at_ms: secret.createdAt };
  }

  #write(s: FakeSession, message: StoreMessage): void {
    if (!s.ended) s.stream.write(message);
  }
}

/**
 * Fixed certificates for grpc-js. The listeners are called on the next tick,
 * not synchronously: grpc-js 1.14 registers its watcher only after
 * add*Listener returns, so a synchronous update is lost and the server drops
 * every connection ("unloaded credentials").
 */
/**
 * Ends a server stream with a status the client receives. Not destroy(err):
 * in grpc-js 1.14 a destroyed server stream never sends its status, and the
 * client waits forever. Emitting 'error' makes grpc-js end the call with it.
 */
function refuse(stream: grpc.ServerDuplexStream<AgentMessage, StoreMessage>, code: grpc.status, details: string): void {
  stream.emit('error', Object.assign(new Error(details), { code, details }));
}

function staticProvider(caPem: string, chainPem: string, keyPem: string): grpc.experimental.CertificateProvider {
  return {
    addCaCertificateListener: (listener) => setImmediate(() => listener({ caCertificate: Buffer.from(caPem) })),
    removeCaCertificateListener: () => {},
    addIdentityCertificateListener: (listener) => setImmediate(() => listener({ certificate: Buffer.from(chainPem), privateKey: Buffer.from(keyPem) })),
    removeIdentityCertificateListener: () => {},
  };
}

function peerOf(call: { getAuthContext(): { sslPeerCertificate?: { raw?: Buffer } } }): { nodeId: string; serial: string } | undefined {
  const raw = call.getAuthContext().sslPeerCertificate?.raw;
  if (!raw) return undefined;
  const identity = readCertIdentity(new X509Certificate(raw).toString());
  return { nodeId: identity.commonName, serial: identity.serial };
}

export const grant = (source: string, target = source, mode = 0o444): WireGrant => ({ source, target, uid: 0, gid: 0, mode });
