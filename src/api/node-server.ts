/**
 * The gRPC server of the node protocol. One listener: TLS always; a client
 * certificate is requested and, when given, verified against the cluster CA
 * by the TLS layer. Join is the only call that works without one; Renew and
 * Session refuse a caller whose certificate is missing, foreign, expired or
 * revoked (UNAUTHENTICATED / PERMISSION_DENIED) before any data flows.
 */
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { HushError, isHushError } from '../errors/index.js';
import { GRPC_MAX_MESSAGE_BYTES, nodeServiceDefinition, type AgentMessage, type JoinRequest, type JoinResponse, type StoreMessage } from './node-proto.js';

export interface NodeIdentity {
  nodeId: string;
  role: string;
  certPem: string;
}

/** What the server needs from the store; implemented by the node dispatcher. */
export interface NodeProtocolHandler {
  join(request: JoinRequest): Promise<JoinResponse>;
  renew(identity: NodeIdentity, csrPem: string): Promise<string>;
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
 * A certificate provider that hands grpc-js fixed PEMs (and could be updated
 * for CA rotation). Updates are delivered on the next tick: grpc-js registers
 * its watcher only after add*Listener returns, and drops a synchronous update.
 */
class StaticCertificateProvider implements grpc.experimental.CertificateProvider {
  constructor(private readonly tls: TlsMaterial) {}
  addCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    setImmediate(() => listener({ caCertificate: Buffer.from(this.tls.caPem) }));
  }
  removeCaCertificateListener(): void {}
  addIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    setImmediate(() => listener({ certificate: Buffer.from(this.tls.certChainPem), privateKey: Buffer.from(this.tls.keyPem) }));
  }
  removeIdentityCertificateListener(): void {}
}

function identityOf(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>): NodeIdentity | undefined {
  // grpc-js only exposes the peer certificate when the TLS layer verified it against the CA.
  const cert = call.getAuthContext().sslPeerCertificate;
  if (!cert?.raw) return undefined;
  const x509 = new X509Certificate(cert.raw);
  const subject = Object.fromEntries(x509.subject.split('\n').map((line) => line.split('=') as [string, string]));
  if (!subject.CN || !subject.OU) return undefined;
  return { nodeId: subject.CN, role: subject.OU, certPem: x509.toString() };
}

function toStatus(err: unknown): Partial<grpc.StatusObject> {
  if (isHushError(err)) {
    const code =
      err.code === 'forbidden' ? grpc.status.PERMISSION_DENIED
      : err.code === 'unauthorized' ? grpc.status.UNAUTHENTICATED
      : err.code === 'not_found' ? grpc.status.NOT_FOUND
      : err.code === 'locked' || err.code === 'unavailable' ? grpc.status.UNAVAILABLE
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

export async function startNodeServer(address: string, tls: TlsMaterial, handler: NodeProtocolHandler): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': GRPC_MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': GRPC_MAX_MESSAGE_BYTES,
    // Notice an agent that vanished without closing its connection within seconds.
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
  });
  const provider = new StaticCertificateProvider(tls);
  const credentials = grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);

  server.addService(nodeServiceDefinition(), {
    Join: (call: grpc.ServerUnaryCall<JoinRequest, JoinResponse>, callback: grpc.sendUnaryData<JoinResponse>) => {
      handler.join(call.request).then((reply) => callback(null, reply), (err) => callback(toStatus(err)));
    },
    Renew: (call: grpc.ServerUnaryCall<{ csr_pem: string }, { certificate_pem: string }>, callback: grpc.sendUnaryData<{ certificate_pem: string }>) => {
      const identity = identityOf(call);
      if (!identity) return callback(UNAUTHENTICATED);
      handler
        .authorize(identity)
        .then(() => handler.renew(identity, call.request.csr_pem))
        .then((certificate_pem) => callback(null, { certificate_pem }), (err) => callback(toStatus(err)));
    },
    Session: (stream: grpc.ServerDuplexStream<AgentMessage, StoreMessage>) => {
      const identity = identityOf(stream);
      if (!identity) return endWithStatus(stream, UNAUTHENTICATED);
      handler.authorize(identity).then(
        () => handler.openSession(identity, stream),
        (err) => endWithStatus(stream, toStatus(err)),
      );
    },
  });

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, credentials, (err, p) => {
      if (!err) return resolve(p);
      const inUse = /EADDRINUSE/.test(err.message);
      reject(new HushError('unavailable', `cannot listen on ${address} for the node protocol (${inUse ? 'address already in use' : err.message}); pass another --listen`));
    }),
  );
  return { server, port };
}
