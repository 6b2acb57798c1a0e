/** The store's admin API: REST (native and the Docker-compatible subset) and its OpenAPI document, on the unix socket and on HTTPS. */
export { createAdminApp, createAdminExpress, type AdminContext } from './admin-app.js';
export { documentedOperations, openApiDocument } from './openapi.js';
export type { ClusterControl, NodeStatus } from './cluster-routes.js';
export type { CaRotationReport, CaStatus } from './ca-routes.js';
export { ClientConnections } from './client-connections.js';
export type { AdminCertControl, AdminCertView, IssuedAdminCert } from './cert-routes.js';
