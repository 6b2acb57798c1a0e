/**
 * The gRPC server of the node protocol. One listener: TLS always; a client
 * certificate is requested and, when given, verified against the cluster CA
 * by the TLS layer. Join is the only call that works without one; Renew and
 * Session refuse a caller whose certificate is missing, foreign, expired or
 * revoked (UNAUTHENTICATED / PERMISSION_DENIED) before any data flows.
 * Everything an unauthenticated peer can make the store hold is bounded
 * (node-limits.ts): sockets by the connection gate, calls by the call gate,
 * message sizes by grpc-js's receive limit, checked before decoding.
 */
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { HushError, isHushError } from '../errors/index.js';
import { log } from '../log/index.js';
import { callGate } from './call-gate.js';
import { ConnectionGate } from './connection-gate.js';
import { AddressLockout, splitHostPort } from '../http/index.js';
import { JOIN_FAILURE_WINDOW_MS, type NodeLimits } from './node-limits.js';
import { GRPC_MAX_SNAPSHOT_BYTES, nodeServiceDefinition, type AgentMessage, type JoinRequest, type JoinResponse, type RenewRequest, type RenewResponse, type StoreMessage } from './node-proto.js';
import { KEEPALIVE_TIME_MS, KEEPALIVE_TIMEOUT_MS } from './timing.js';

export interface NodeIdentity {
  nodeId: string;
  role: string;
  certPem: string;
}

/** What the server needs from the store; implemented by the node dispatcher. */
export interface NodeProtocolHandler {
  join(request: JoinRequest): Promise<JoinResponse>;
  renew(identity: NodeIdentity, csrPem: string): Promise<RenewResponse>;
  /** Checks that the node may connect (exists, not revoked); throws a HushError otherwise. */
  authorize(identity: NodeIdentity): Promise<void>;
  openSession(identity: NodeIdentity, stream: grpc.ServerDuplexStream<AgentMessage, StoreMessage>): void;
}

export interface TlsMaterial {
  caPem: string;
  keyPem: string;
  certChainPem: string;
}

/**
 * A certificate provider that hands grpc-js the store's PEMs and, on a CA
 * rotation, new ones: grpc-js then sets a new secure context on its server,
 * so new connections get the new chain and trust while established ones go
 * on untouched. Deliveries are on the next tick: grpc-js registers its
 * watcher only after add*Listener returns, and drops a synchronous update.
 */
class UpdatableCertificateProvider implements grpc.experimental.CertificateProvider {
  private readonly caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();
  constructor(private tls: TlsMaterial) {}
  update(tls: TlsMaterial): void {
    this.tls = tls;
    for (const listener of this.identityListeners) this.sendIdentity(listener);
    for (const listener of this.caListeners) this.sendCa(listener);
  }
  addCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    this.sendCa(listener);
  }
  removeCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
  }
  addIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    this.sendIdentity(listener);
  }
  removeIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
  }
  private sendCa(listener: grpc.experimental.CaCertificateUpdateListener): void {
    const { caPem } = this.tls;
    setImmediate(() => listener({ caCertificate: Buffer.from(caPem) }));
  }
  private sendIdentity(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    const { certChainPem, keyPem } = this.tls;
    setImmediate(() => listener({ certificate: Buffer.from(certChainPem), privateKey: Buffer.from(keyPem) }));
  }
}

function identityOf(call: Pick<grpc.ServerInterceptingCallInterface, 'getAuthContext'>): NodeIdentity | undefined {
  // grpc-js only exposes the peer certificate when the TLS layer verified it against the CA.
  const cert = call.getAuthContext().sslPeerCertificate;
  if (!cert?.raw) return undefined;
  const x509 = new X509Certificate(cert.raw);
  const subject = Object.fromEntries(x509.subject.split('\n').map((line) => line.split('=') as [string, string]));
  if (!subject.CN || !subject.OU) return undefined;
  return { nodeId: subject.CN, role: subject.OU, certPem: x509.toString() };
}

/** The gRPC status a HushError (or anything else thrown) is answered with. */
export function grpcStatusOf(err: unknown): Partial<grpc.StatusObject> {
  if (isHushError(err)) {
    const code =
      err.code === 'forbidden' ? grpc.status.PERMISSION_DENIED
      : err.code === 'unauthorized' ? grpc.status.UNAUTHENTICATED
      : err.code === 'not_found' ? grpc.status.NOT_FOUND
      : err.code === 'locked' || err.code === 'unavailable' ? grpc.status.UNAVAILABLE
      : err.code === 'too_large' ? grpc.status.RESOURCE_EXHAUSTED
      : err.status < 500 ? grpc.status.INVALID_ARGUMENT
      : grpc.status.INTERNAL;
    return { code, details: err.message };
  }
  return { code: grpc.status.INTERNAL, details: 'internal error; see the store log' };
}

/**
 * Ends a server stream with a status the client sees (grpc-js sends the
 * status for an emitted error; `destroy` would drop it).
 */
export function endWithStatus(stream: grpc.ServerDuplexStream<unknown, unknown>, status: Partial<grpc.StatusObject>): void {
  stream.emit('error', Object.assign(new Error(status.details), status));
}

const UNAUTHENTICATED = { code: grpc.status.UNAUTHENTICATED, details: 'a valid node certificate issued by this cluster is required; join with `hush agent --token`' };

/**
 * What counts towards a Join lockout: a token the store refused (wrong,
 * rotated away, bound to another name, another cluster's). A bad name or
 * label is refused before the token is checked, so it tells a guesser nothing.
 */
const TOKEN_REFUSED = grpc.status.PERMISSION_DENIED;

/** The IP address of a call's peer ("1.2.3.4:5678", "[::1]:5678" → without the port). */
function peerAddress(call: { getPeer(): string }): string {
  return call.getPeer().replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
}

export interface NodeServer {
  port: number;
  /** New TLS material (a CA rotation) for connections from now on; open connections keep theirs. */
  updateTls(tls: TlsMaterial): void;
  close(): Promise<void>;
}

export async function startNodeServer(address: string, tls: TlsMaterial, handler: NodeProtocolHandler, limits: NodeLimits): Promise<NodeServer> {
  // grpc-js does TLS and HTTP/2 on the sockets the gate lets through; it never listens itself.
  // (The injector exists before the gate accepts anything: listen comes after both.)
  const { maxConnections, maxConnectionsPerAddress, handshakeTimeoutMs } = limits;
  const gate = new ConnectionGate({ maxConnections, maxConnectionsPerAddress, handshakeTimeoutMs }, (socket) => injector.injectConnection(socket), log);
  const server = new grpc.Server({
    // Per direction: agents send little (Join, Hello, acks); the store sends whole snapshots.
    'grpc.max_receive_message_length': limits.maxMessageBytes,
    'grpc.max_send_message_length': GRPC_MAX_SNAPSHOT_BYTES,
    'grpc.max_concurrent_streams': limits.maxStreamsPerConnection,
    'grpc.max_connection_idle_ms': limits.idleTimeoutMs,
    // Notice an agent that vanished without closing its connection within seconds.
    'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
    // No channelz: hush serves no channelz service, so nobody can read what grpc-js would track (a trace and
    // counters per socket and call, kept in ordered maps). Tracking cost ~7% of the store's CPU as 1,000
    // sessions came and went in bench/propagation.ts.
    'grpc.enable_channelz': 0,
    interceptors: [
      callGate(limits, {
        nodeOf: (call) => identityOf(call)?.nodeId,
        onCall: (call) => {
          const { remoteAddress, remotePort } = call.getConnectionInfo();
          gate.markActive(remoteAddress, remotePort);
        },
      }),
    ],
  });
  const joinThrottle = new AddressLockout({ maxFailures: limits.maxJoinFailuresPerAddress, windowMs: JOIN_FAILURE_WINDOW_MS, lockMs: limits.joinLockoutMs });
  const provider = new UpdatableCertificateProvider(tls);
  const credentials = grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);

  server.addService(nodeServiceDefinition(), {
    Join: (call: grpc.ServerUnaryCall<JoinRequest, JoinResponse>, callback: grpc.sendUnaryData<JoinResponse>) => {
      const address = peerAddress(call);
      const lockout = joinThrottle.check(address);
      if (lockout) {
        const seconds = Math.ceil(lockout.retryAfterMs / 1000);
        return callback({ code: grpc.status.RESOURCE_EXHAUSTED, details: `too many refused joins from ${address}; joins from there are refused for ${seconds} s more` });
      }
      handler.join(call.request).then(
        (reply) => callback(null, reply),
        (err) => {
          const status = grpcStatusOf(err);
          if (status.code === TOKEN_REFUSED) {
            const failures = joinThrottle.failed(address);
            if (failures !== undefined) {
              log.warn({ address, failures, windowMs: JOIN_FAILURE_WINDOW_MS, lockoutMs: limits.joinLockoutMs }, 'join tokens refused again and again from one address: its joins are refused for a while (an agent with a wrong token, or someone guessing)');
            }
          }
          callback(status);
        },
      );
    },
    Renew: (call: grpc.ServerUnaryCall<RenewRequest, RenewResponse>, callback: grpc.sendUnaryData<RenewResponse>) => {
      const identity = identityOf(call);
      if (!identity) return callback(UNAUTHENTICATED);
      handler
        .authorize(identity)
        .then(() => handler.renew(identity, call.request.csr_pem))
        .then((reply) => callback(null, reply), (err) => callback(grpcStatusOf(err)));
    },
    Session: (stream: grpc.ServerDuplexStream<AgentMessage, StoreMessage>) => {
      const identity = identityOf(stream);
      if (!identity) return endWithStatus(stream, UNAUTHENTICATED);
      handler.authorize(identity).then(
        () => handler.openSession(identity, stream),
        (err) => endWithStatus(stream, grpcStatusOf(err)),
      );
    },
  });

  const injector = server.createConnectionInjector(credentials);
  const { host, port } = splitHostPort(address);
  const bound = await gate.listen(host, port).catch((err: NodeJS.ErrnoException) => {
    const why = err.code === 'EADDRINUSE' ? 'address already in use' : err.message;
    throw new HushError('unavailable', `cannot listen on ${address} for the node protocol (${why}); pass another --listen`);
  });
  return {
    port: bound,
    updateTls: (next) => provider.update(next),
    async close() {
      await gate.close();
      injector.destroy();
      server.forceShutdown();
    },
  };
}
