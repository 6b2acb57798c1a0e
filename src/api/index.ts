/** The store's APIs: admin REST (native and the Docker-compatible subset), its OpenAPI document, and the gRPC node protocol. */
export { createAdminApp, createAdminExpress, type AdminContext } from './admin-app.js';
export { documentedOperations, openApiDocument } from './openapi.js';
export { closeServer, listenOnUnixSocket } from './listen.js';
export { toHttpError } from './http-errors.js';
export { decodeBase64, validator, type Validator } from './validate.js';
export {
  GRPC_MAX_SNAPSHOT_BYTES,
  STORE_TLS_NAME,
  nodeServiceClient,
  nodeServiceDefinition,
  type AgentMessage,
  type JoinRequest,
  type JoinResponse,
  type StoreMessage,
  type WireContainer,
  type WireDecision,
  type WireDelta,
  type WireGrant,
  type WireSecretVersion,
  type WireServiceGrants,
  type WireSnapshot,
} from './node-proto.js';
export { endWithStatus, grpcStatusOf, startNodeServer, type NodeIdentity, type NodeProtocolHandler, type NodeServer, type TlsMaterial } from './node-server.js';
export { DEFAULT_NODE_LIMITS, resolveNodeLimits, type NodeLimits } from './node-limits.js';
export type { ClusterControl, NodeStatus } from './cluster-routes.js';
export { listenHttps, splitHostPort } from './listen.js';
export { ClientConnections } from './client-connections.js';
export type { AdminCertControl, AdminCertView, IssuedAdminCert } from './cert-routes.js';
