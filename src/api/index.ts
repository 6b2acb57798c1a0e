/** The store's admin API: REST (native), on the unix socket and on HTTPS. */
export { createAdminApp, type AdminContext } from './admin-app.js';
export type { ClusterControl, NodeStatus } from './cluster-routes.js';
export { ClientConnections } from './client-connections.js';
export type { AdminCertControl, AdminCertView, IssuedAdminCert } from './cert-routes.js';
