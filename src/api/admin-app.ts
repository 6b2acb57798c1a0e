/**
 * The admin REST application. The same app is served on the root-only unix
 * socket and on HTTPS with client certificates (the role comes from the
 * certificate; see authorize).
 */
import express from 'express';
import type { IncomingMessage, RequestListener } from 'node:http';
import { TLSSocket } from 'node:tls';
import * as acl from '../acl/index.js';
import type { JSONSchemaType } from 'ajv';
import { HushError } from '../errors/index.js';
import { errorHandler, notFoundHandler, sendError, validator } from '../http/index.js';
import type { StoreMetrics } from '../metrics/index.js';
import type { AdminCertStore, AuditLog, Backend, Keyring, NodeStore, SecretStore, ServiceStore, StackStore } from '../store/index.js';
import { auditRoutes } from './audit-routes.js';
import { actorOf, recordResponse } from './audit-trail.js';
import { certRoutes, type AdminCertControl } from './cert-routes.js';
import { peerCertificateOf } from './client-connections.js';
import { caRoutes } from './ca-routes.js';
import { joinTokenRoutes, nodeRoutes, serviceRoutes, type ClusterControl } from './cluster-routes.js';
import { DEPLOY_PATH, deployBodyParser, deployRoutes } from './deploy-routes.js';
import { DOCKER_VERSION_PREFIX, dockerRoutes, isDockerPath } from './docker-routes.js';
import { CREATE_SECRET_PATH, fastCreateHandler, isPlainCreateRequest } from './fast-create.js';
import { openApiDocument } from './openapi.js';
import { requestShapeGuards } from './request-shape.js';
import { createSecret, secretRoutes } from './secret-routes.js';

export interface AdminContext {
  backend: Backend;
  keyring: Keyring;
  secrets: SecretStore;
  services: ServiceStore;
  nodes: NodeStore;
  /** Records of issued admin certificates: an HTTPS client is admitted only by its record. */
  adminCerts: AdminCertStore;
  stacks: StackStore;
  /** Replaces the KEK and re-wraps every data key (store/kek-rotation.ts). */
  rotateKek: () => Promise<{ term: number; secrets: number }>;
  /** The PKI and node sessions; undefined until the store is unlocked and they are up. */
  cluster: () => ClusterControl | undefined;
  /** Issuing admin certificates needs the CA: undefined until the cluster side is up. */
  certs: () => AdminCertControl | undefined;
  randomBytes: (n: number) => Uint8Array;
  metrics: StoreMetrics;
  /** Every change and refusal is appended here (audit-trail.ts). */
  audit: AuditLog;
}

const unlockBody = validator<{ key: string }>('unlock', {
  type: 'object',
  additionalProperties: false,
  required: ['key'],
  properties: { key: { type: 'string' } },
} as JSONSchemaType<{ key: string }>);

/** Routes that work while the store is locked (metrics report the lock). */
const OPEN_WHILE_LOCKED = new Set(['/healthz', '/v1/unlock', '/metrics', '/v1/openapi.json']);

/**
 * The admin app as a request listener: express for every route, except that
 * plain `POST /v1/secrets` requests take the fast path (see fast-create.ts).
 * Every request, on either path, is timed by its route pattern.
 */
export function createAdminApp(ctx: AdminContext): RequestListener {
  const app = createAdminExpress(ctx);
  const bodyLimit = requestBodyLimit(ctx);
  // The route is fixed, so its action is looked up once rather than per request.
  const createAction = acl.actionForRequest('POST', CREATE_SECRET_PATH);
  const fastCreate = fastCreateHandler({
    admit: (req) => {
      assertRole(ctx, req, createAction);
      assertOpen(ctx, CREATE_SECRET_PATH);
    },
    create: (body, req) => createSecret(ctx.secrets, body, actorOf(req)),
  });
  return (req, res) => {
    const started = process.hrtime.bigint();
    // Read now: express rewrites req.url while routing into a mounted router.
    const { method = '', url = '' } = req;
    res.once('finish', () => {
      // The pattern comes from the route table: never a label made of the request's path.
      const route = acl.routePattern(method, url);
      ctx.metrics.observeRequest(method, route, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
    });
    recordResponse(req, res, (entry) => ctx.audit.append(entry));
    if (isPlainCreateRequest(req, bodyLimit)) fastCreate(req, res);
    else app(req, res);
  };
}

/** Base64 makes the body 4/3 of the value; leave room for name and labels. */
function requestBodyLimit(ctx: AdminContext): number {
  return Math.ceil((ctx.secrets.maxValueBytes * 4) / 3) + 64 * 1024;
}

/** The express app alone (every route but the fast path's twin); exported so tests can list its routes. */
export function createAdminExpress(ctx: AdminContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((req, res, next) => {
    try {
      authorize(ctx, req, req.path);
    } catch (err) {
      // A certificate that is not admitted gets its answer, then the connection goes: nothing more on it.
      if ((err as HushError).code === 'unauthorized') res.setHeader('connection', 'close');
      throw err;
    }
    next();
  });

  app.use((req, _res, next) => {
    assertOpen(ctx, req.path);
    next();
  });

  // Each route takes only the body and query it documents (request-shape.ts); refused before any handler acts.
  const shape = requestShapeGuards();
  app.use(shape.beforeParsing);
  // Bodies are read only once the caller may call the route: an auditor cannot make the store parse a 10 MiB deploy.
  app.use(DEPLOY_PATH, deployBodyParser(requestBodyLimit(ctx)));
  app.use(express.json({ limit: requestBodyLimit(ctx), strict: true }));
  app.use(shape.afterParsing);

  app.get('/healthz', (_req, res) => {
    res.json({ status: ctx.keyring.locked ? 'locked' : 'ok', revision: ctx.audit.dataRevision(), cluster: ctx.cluster() ? 'ready' : 'starting' });
  });

  app.get('/metrics', async (_req, res) => {
    res.type(ctx.metrics.contentType()).send(await ctx.metrics.text());
  });

  app.get('/v1/openapi.json', (_req, res) => {
    res.json(openApiDocument());
  });

  app.post('/v1/unlock', async (req, res) => {
    await ctx.keyring.unlock(unlockBody(req.body).key);
    res.json({ status: 'ok' });
  });

  app.post('/v1/key/rotate', async (_req, res) => {
    res.json(await ctx.rotateKek());
  });

  app.use('/v1/secrets', secretRoutes(ctx.secrets, ctx.randomBytes, () => ctx.cluster()));
  app.use('/v1/audit', auditRoutes(ctx.audit, () => ctx.cluster()));
  app.use('/v1/services', serviceRoutes(ctx.services));
  app.use('/v1', deployRoutes(ctx.stacks));
  const cluster = (): ClusterControl => {
    const control = ctx.cluster();
    if (!control) throw new HushError('unavailable', 'the cluster side of the store is still starting; try again in a moment');
    return control;
  };
  app.use('/v1/nodes', nodeRoutes(ctx.nodes, cluster));
  app.use('/v1/join-token', joinTokenRoutes(cluster));
  app.use('/v1/ca', caRoutes(cluster));
  app.use(
    '/v1/certs',
    certRoutes(() => {
      const control = ctx.certs();
      if (!control) throw new HushError('unavailable', 'the cluster side of the store is still starting; try again in a moment');
      return control;
    }),
  );

  // Docker Engine API subset (docker-routes.ts), with and without the /v1.NN prefix the CLI adds.
  const docker = dockerRoutes({ secrets: ctx.secrets, nodes: ctx.nodes });
  app.use(DOCKER_VERSION_PREFIX, docker);
  app.use(docker);

  app.use((req: express.Request, res: express.Response, next: express.NextFunction) => {
    if (!isDockerPath(req.path)) return notFoundHandler(req, res, next);
    // What a docker CLI user sees after `docker service ls`, `docker ps`...: say what does work.
    sendError(res, new HushError('not_found', `hush serves only Docker's secrets API (docker secret create|ls|inspect|rm), not ${req.method} ${req.path}; use the hush CLI for the rest`), 'docker');
  });
  app.use(errorHandler('store', (req) => (isDockerPath(req.path) ? 'docker' : 'hush')));
  return app;
}

/**
 * Role-based access: on HTTPS the role is that of the client certificate's
 * record in the store (which must match the certificate's OU and CN, and be
 * neither revoked nor expired); on the root-only unix socket the caller is
 * root, so admin. Runs on every request, so a revocation refuses the next
 * request even on a keep-alive connection (client-connections.ts also closes
 * those connections at once).
 */
function authorize(ctx: AdminContext, req: IncomingMessage, path: string): void {
  assertRole(ctx, req, acl.actionForRequest(req.method ?? '', path));
}

function assertRole(ctx: AdminContext, req: IncomingMessage, action: acl.Action | undefined): void {
  if (!(req.socket instanceof TLSSocket)) {
    if (action !== undefined) acl.assertCan('admin', action);
    return;
  }
  // Even public routes are refused to a certificate that is not (or no longer) admitted: a revoked client gets nothing.
  const role = ctx.adminCerts.admit(peerCertificateOf(req.socket));
  if (action !== undefined) acl.assertCan(role, action);
}

function assertOpen(ctx: AdminContext, path: string): void {
  if (ctx.keyring.locked && !OPEN_WHILE_LOCKED.has(path)) throw new HushError('locked', 'the store is locked; run `hush unlock` and paste the unlock key');
}
