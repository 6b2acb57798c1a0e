/** Listeners for the HTTP apps (the store's admin API, the agent's runtime API): root-only unix sockets and mutual-TLS HTTPS. */
import { chmod, mkdir, unlink } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { dirname } from 'node:path';
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { HushError } from '../errors/index.js';
import { AuthFailureGuard, DEFAULT_AUTH_FAILURE_LIMITS, type AuthFailureLimits } from './auth-failures.js';
import { answerClientErrors } from './client-errors.js';

/** Something that follows a server's connections (the admin API's ClientConnections, which cuts those of a revoked certificate). */
export interface ConnectionTracker {
  attach(server: HttpsServer): void;
}

/**
 * Listens on `path` with mode 0600 from the first moment (umask), so no other
 * user can connect in the gap before a chmod. A stale socket left by a crash is
 * replaced; a live one (another process serving it) is an error.
 */
export async function listenOnUnixSocket(app: RequestListener, path: string): Promise<Server> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  if (await isServed(path)) throw new HushError('conflict', `${path} is already served by a running process; stop it first or pass another --socket`);
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  const server = createServer(app);
  answerClientErrors(server);
  const previousUmask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(previousUmask);
  }
  await chmod(path, 0o600);
  return server;
}

function isServed(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Slow clients (slowloris) cannot hold the HTTPS listener's sockets: a TLS
 * handshake must finish, and a request's headers arrive, within 10 s (Node's
 * defaults are 120 s and 60 s, and headers are only checked every 30 s); a
 * whole request within 5 minutes (large secret values over slow links).
 * Headers are capped at Node's 16 KiB (431 beyond). Legitimate clients send
 * a request's headers in one write, well within these.
 */
const SLOW_CLIENT_LIMITS = {
  handshakeTimeout: 10_000,
  headersTimeout: 10_000,
  requestTimeout: 300_000,
  connectionsCheckingInterval: 1_000,
  maxHeaderSize: 16 * 1024,
} as const;

/**
 * Serves the admin API on HTTPS: TLS 1.3 only, and a client certificate from
 * the cluster CA is required (the TLS layer refuses anything else). Whether
 * that certificate is still admitted (on record, not revoked) is the app's
 * check on every request; `connections` tracks open connections so that a
 * revocation can close them. Addresses that fail to authenticate again and
 * again are locked out (auth-failures.ts; `authFailures.maxFailures` 0 turns
 * that off).
 */
export async function listenHttps(
  app: RequestListener,
  address: string,
  tls: { caPem: string; keyPem: string; certChainPem: string },
  connections?: ConnectionTracker,
  authFailures: AuthFailureLimits = DEFAULT_AUTH_FAILURE_LIMITS,
): Promise<Server> {
  const { host, port } = splitHostPort(address);
  const guard = authFailures.maxFailures > 0 ? new AuthFailureGuard(authFailures) : undefined;
  const server = createHttpsServer(
    {
      minVersion: 'TLSv1.3',
      requestCert: true,
      rejectUnauthorized: true,
      ca: tls.caPem,
      key: tls.keyPem,
      cert: tls.certChainPem,
      ...SLOW_CLIENT_LIMITS,
    },
    guard ? guard.wrap(app) : app,
  );
  guard?.attach(server);
  answerClientErrors(server);
  connections?.attach(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/**
 * New TLS material for an HTTPS listener (a CA rotation): connections from
 * now on get the new chain and trust; open ones keep what they negotiated.
 */
export function updateHttpsTls(server: Server, tls: { caPem: string; keyPem: string; certChainPem: string }): void {
  (server as HttpsServer).setSecureContext({ minVersion: 'TLSv1.3', ca: tls.caPem, key: tls.keyPem, cert: tls.certChainPem });
}

export function splitHostPort(address: string): { host: string; port: number } {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  if (!match) throw new HushError('bad_request', `"${address}" is not HOST:PORT`);
  return { host: match[1] || '0.0.0.0', port: Number(match[2]) };
}

/** Stops listening and drops open (keep-alive) connections; resolves once closed. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
