/**
 * Every admin route refuses what it does not define, in one place rather
 * than route by route: the OPERATIONS list of openapi.ts says which routes
 * take a JSON body and which query parameters each one takes, and a request
 * carrying anything else is refused before its handler runs, so a refused
 * request changes nothing.
 *
 * Without this, a route with no body (POST /v1/key/rotate, a cert revoke)
 * ran whatever body came with it, and a JSON route given a body of another
 * Content-Type (which express.json leaves unread) acted as if it had none:
 * `POST /v1/join-token/rotate` with `text/plain` "junk" rotated the token.
 *
 * The rules:
 * - a body (Content-Length above 0, or chunked) must be JSON
 *   (Content-Type: application/json), on every route;
 * - a route without a body takes none, or `{}` (the hush CLI sends `{}` with
 *   every POST); an empty body with any Content-Type is no body (the docker
 *   CLI sends `Content-Type: text/plain` with its empty POSTs);
 * - only the query parameters the route documents (the docker CLI sends
 *   `filters` and `version`, both documented).
 * A request the route table does not know may carry no body and no query:
 * if it does, the answer is express's 404, given before any handler (an odd
 * spelling that express would still route, e.g. an encoded "/" in a name,
 * so reaches no handler with anything it did not define).
 */
import type { Request, RequestHandler } from 'express';
import * as acl from '../acl/index.js';
import { HushError } from '../errors/index.js';
import { documentedOperations } from './openapi.js';

interface Shape {
  /** The route as documented, for messages: `POST /v1/key/rotate`. */
  route: string;
  /** False for a request the route table does not know: refused as not found if it carries anything. */
  known: boolean;
  body: boolean;
  query: ReadonlySet<string>;
}

/** `{name}` (OpenAPI) and `:name` (route table) both become `:`, and the Docker version prefix goes. */
const shapeKey = (method: string, path: string) => `${method === 'HEAD' ? 'GET' : method} ${path.replace(/^\/v1\.NN(?=\/)/, '').replace(/\{[^}]+\}|:[A-Za-z0-9_]+/g, ':')}`;

function documentedShapes(): Map<string, Shape> {
  const shapes = new Map<string, Shape>();
  for (const op of documentedOperations()) {
    const key = shapeKey(op.method, op.path);
    // The route table must resolve each documented route to itself, or its requests would get the strictest shape.
    const resolved = shapeKey(op.method, acl.routePattern(op.method, op.path.replace(/\{[^}]+\}/g, 'x')));
    if (resolved !== key) throw new Error(`request shapes: ${op.method} ${op.path} resolves to "${resolved}" in the route table`);
    shapes.set(key, { route: `${op.method} ${op.path}`, known: true, body: op.body, query: new Set(op.query) });
  }
  return shapes;
}

/** True when the request carries body bytes (what body-parser reads), decided from the headers. */
function carriesBody(req: Request): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  return Number(req.headers['content-length'] ?? 0) !== 0;
}

const isEmptyObject = (body: unknown) => typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0;

/**
 * Two handlers: `beforeParsing` (query and Content-Type, from the headers, so
 * a refused body is never read) and `afterParsing` (a route without a body
 * got nothing but `{}`). Mount them around the body parsers.
 */
export function requestShapeGuards(): { beforeParsing: RequestHandler; afterParsing: RequestHandler } {
  const shapes = documentedShapes();
  const shapeOf = (req: Request): Shape =>
    shapes.get(shapeKey(req.method, acl.routePattern(req.method, req.path))) ?? { route: `${req.method} ${req.path}`, known: false, body: false, query: new Set() };
  // The answer express gives to a route it does not have.
  const notFound = (shape: Shape) => new HushError('not_found', `no route for ${shape.route}`);

  const beforeParsing: RequestHandler = (req, _res, next) => {
    const shape = shapeOf(req);
    for (const name of Object.keys(req.query as object)) {
      if (shape.query.has(name)) continue;
      if (!shape.known) throw notFound(shape);
      const allowed = shape.query.size === 0 ? 'takes no query parameters' : `takes only ${[...shape.query].map((q) => `"${q}"`).join(', ')}`;
      throw new HushError('bad_request', `${shape.route} ${allowed}; unknown query parameter "${name}"`);
    }
    if (carriesBody(req) && !req.is('application/json')) {
      if (!shape.known) throw notFound(shape);
      const type = req.headers['content-type'] ?? 'none';
      if (!shape.body) throw new HushError('bad_request', `${shape.route} takes no body (send none, or {}); got one of Content-Type ${type}`);
      throw new HushError('bad_request', `${shape.route} takes a JSON body: Content-Type must be application/json, not ${type}`);
    }
    next();
  };

  const afterParsing: RequestHandler = (req, _res, next) => {
    const shape = shapeOf(req);
    if (shape.body || !carriesBody(req) || isEmptyObject(req.body)) return next();
    if (!shape.known) throw notFound(shape);
    const fields = typeof req.body === 'object' && req.body !== null && !Array.isArray(req.body) ? Object.keys(req.body as object) : [];
    if (fields.length > 0) throw new HushError('unknown_field', `${shape.route} takes no body; unknown field "${fields[0]}"`);
    throw new HushError('bad_request', `${shape.route} takes no body (send none, or {})`);
  };

  return { beforeParsing, afterParsing };
}
