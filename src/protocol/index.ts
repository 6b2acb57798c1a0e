/**
 * The node protocol: the wire contract between the store and its agents
 * (proto/hush/v1/node.proto). Message types, the gRPC server the store runs
 * and the clients the agent dials, the store's TLS name, keepalive and
 * heartbeat timings. Both sides import this door; the agent never loads the
 * admin API.
 */
export {
  MAX_READ_ENTRIES_PER_REPORT,
  STORE_TLS_NAME,
  nodeServiceClient,
  nodeServiceDefinition,
  type AgentMessage,
  type JoinRequest,
  type JoinResponse,
  type RenewResponse,
  type StoreMessage,
  type WireContainer,
  type WireDecision,
  type WireDelta,
  type WireGrant,
  type WireHeldSecret,
  type WireHello,
  type WireReadEntry,
  type WireSecretVersion,
  type WireServiceGrants,
  type WireSnapshot,
} from './node-proto.js';
export { endWithStatus, grpcStatusOf, startNodeServer, type NodeIdentity, type NodeProtocolHandler, type NodeServer } from './node-server.js';
export { resolveNodeLimits, type NodeLimits } from './node-limits.js';
export { grpc, isServiceError, joinClient, nodeClient, unary, type NodeClient, type NodeCredentials } from './node-client.js';
export {
  DEFAULT_HEARTBEAT_PERIOD_MS,
  MAX_HEARTBEAT_PERIOD_MS,
  MIN_HEARTBEAT_PERIOD_MS,
  MISSED_HEARTBEATS_BEFORE_DOWN,
  heartbeatPeriodFrom,
} from './timing.js';
