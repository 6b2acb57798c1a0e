/**
 * gRPC clients for the node protocol. Every channel trusts the cluster CA
 * alone (never the system roots); the join channel has no client
 * certificate, the node channel presents the node's. Keepalive pings notice
 * a store that vanished without closing the connection (kill -9, a pulled
 * cable) within seconds instead of TCP's minutes.
 */
import * as grpc from '@grpc/grpc-js';
import { createSecureContext } from 'node:tls';
import { GRPC_MAX_SNAPSHOT_BYTES, STORE_TLS_NAME, nodeServiceClient, type AgentMessage, type JoinRequest, type JoinResponse, type RenewRequest, type RenewResponse, type StoreMessage } from './node-proto.js';
import { KEEPALIVE_TIME_MS, KEEPALIVE_TIMEOUT_MS } from './timing.js';

/** Where the store's node port is: what grpc-js dials (host:port, an IPv6 host in brackets). */
export interface NodeTarget {
  target: string;
}

/** The generated client's methods, typed. */
export interface NodeClient extends grpc.Client {
  Join(request: JoinRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<JoinResponse>): grpc.ClientUnaryCall;
  Renew(request: RenewRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<RenewResponse>): grpc.ClientUnaryCall;
  Session(metadata?: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<AgentMessage, StoreMessage>;
}

export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // Snapshots from the store are large; what the agent sends is small, and the store enforces its own (smaller) receive limit.
  'grpc.max_receive_message_length': GRPC_MAX_SNAPSHOT_BYTES,
  'grpc.max_send_message_length': GRPC_MAX_SNAPSHOT_BYTES,
  'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  'grpc.keepalive_permit_without_calls': 1,
  // Our own backoff decides when to reconnect; keep grpc's short so a call made after a store restart is not held up.
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 2_000,
  'grpc.ssl_target_name_override': STORE_TLS_NAME,
  'grpc.default_authority': STORE_TLS_NAME,
  // Nothing reads channelz here either (see node-server.ts).
  'grpc.enable_channelz': 0,
};

export interface NodeCredentials {
  caPem: string;
  keyPem: string;
  certPem: string;
}

/** For Join only: authenticates the store by the CA from the token check; the agent has no certificate yet. */
export function joinClient(address: NodeTarget, caPem: string): NodeClient {
  return makeClient(address, tls13({ ca: caPem }));
}

/** For Session and Renew: mutual TLS with the node's certificate. */
export function nodeClient(address: NodeTarget, creds: NodeCredentials): NodeClient {
  return makeClient(address, tls13({ ca: creds.caPem, key: creds.keyPem, cert: creds.certPem }));
}

/**
 * The store speaks TLS 1.3 only; the agent must not settle for less either
 * (grpc-js's createSsl would accept TLS 1.2 from whatever answers). Trust is
 * the cluster CA alone: a secure context built from it, as createSsl does.
 */
function tls13(material: { ca: string; key?: string; cert?: string }): grpc.ChannelCredentials {
  return grpc.credentials.createFromSecureContext(createSecureContext({ minVersion: 'TLSv1.3', ...material }));
}

function makeClient(address: NodeTarget, credentials: grpc.ChannelCredentials): NodeClient {
  const Client = nodeServiceClient();
  return new Client(address.target, credentials, CHANNEL_OPTIONS) as unknown as NodeClient;
}

/** A unary call as a promise, with a deadline so a silent store cannot hang the agent. */
export function unary<Req, Res>(
  call: (request: Req, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<Res>) => grpc.ClientUnaryCall,
  request: Req,
  timeoutMs: number,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    call(request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, response) => {
      if (err) reject(err);
      else if (!response) reject(new Error('empty response from the store'));
      else resolve(response);
    });
  });
}

export function isServiceError(err: unknown): err is grpc.ServiceError {
  return typeof err === 'object' && err !== null && typeof (err as grpc.ServiceError).code === 'number' && 'details' in err;
}

export { grpc };
