/** The store's APIs: admin REST (native), and later the Docker-compatible subset and the gRPC node protocol. */
export { createAdminApp, type AdminContext } from './admin-app.js';
export { listenOnUnixSocket } from './listen.js';
export { toHttpError } from './http-errors.js';
