/**
 * HTTP plumbing shared by the store's admin API (src/api) and the agent's
 * runtime API (src/agent): listeners (with a lockout of addresses that fail
 * client authentication again and again), request-body validation, and errors as
 * the contract's JSON body. Nothing here knows a route.
 */
export { closeServer, listenHttps, updateHttpsTls, listenOnUnixSocket, splitHostPort } from './listen.js';
export { decodeBase64, requestBodySchema, validator, type Validator } from './validate.js';
export { errorHandler, notFoundHandler, sendError, toHttpError } from './errors.js';
export { AddressLockout } from './address-lockout.js';
export { resolveAuthFailureLimits, type AuthFailureLimits } from './auth-failures.js';
