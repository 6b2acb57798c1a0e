/**
 * What the admin API writes to the audit log: every request that changes
 * something (any method but GET and HEAD), whatever its outcome, and every
 * request refused for its caller (401, 403), reads included. One hook on the
 * response, installed before routing, so no route can forget it: the record
 * is appended when the handler ends the response, and the response goes out
 * only once the record is durable.
 *
 * A record holds who (actor), what (action, object), and the outcome; from
 * the response it takes only a version number and an error's code and
 * message, never anything else of the body (a certificate's key, a token).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TLSSocket } from 'node:tls';
import * as acl from '../acl/index.js';
import { log } from '../log/index.js';
import type { AuditEntry } from '../rotation/index.js';
import { peerCertificateOf } from './client-connections.js';

/** Who is calling: `local-root` on the root-only socket, else the client certificate's subject and role. */
export function actorOf(req: IncomingMessage): string {
  if (!(req.socket instanceof TLSSocket)) return 'local-root';
  const peer = peerCertificateOf(req.socket);
  return `cert:${peer.commonName ?? '?'} (${peer.role ?? 'no role'})`;
}

/** Readable names of what a route does; a route not here is recorded as "METHOD /pattern". */
const ACTIONS: Record<string, string> = {
  'POST /v1/secrets': 'secret.create',
  'DELETE /v1/secrets/:name': 'secret.rm',
  'POST /v1/secrets/:name/rotate': 'secret.rotate',
  'POST /v1/secrets/:name/rollback': 'secret.rollback',
  'PUT /v1/secrets/:name/schedule': 'secret.schedule',
  'DELETE /v1/secrets/:name/schedule': 'secret.unschedule',
  'POST /v1/services': 'service.create',
  'DELETE /v1/services/:name': 'service.rm',
  'POST /v1/services/:name/update': 'service.update',
  'POST /v1/deploy': 'deploy',
  'DELETE /v1/stacks/:name': 'stack.rm',
  'POST /v1/nodes/:name/labels': 'node.label',
  'DELETE /v1/nodes/:name': 'node.rm',
  'POST /v1/join-token': 'join-token.issue',
  'POST /v1/join-token/rotate': 'join-token.rotate',
  'POST /v1/key/rotate': 'key.rotate',
  'POST /v1/certs': 'cert.issue',
  'POST /v1/certs/:name/renew': 'cert.renew',
  'POST /v1/certs/:name/revoke': 'cert.revoke',
  'POST /v1/unlock': 'unlock',
  'POST /secrets/create': 'secret.create',
  'POST /v1.NN/secrets/create': 'secret.create',
  'DELETE /secrets/:id': 'secret.rm',
  'DELETE /v1.NN/secrets/:id': 'secret.rm',
  'POST /secrets/:id/update': 'secret.labels',
  'POST /v1.NN/secrets/:id/update': 'secret.labels',
};

const RESULT_OF_STATUS: Record<number, string> = { 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 409: 'conflict', 413: 'too_large', 423: 'locked', 503: 'unavailable' };

/** The kind of object a collection holds ("secrets" → "secret"), for the record's object. */
const KIND: Record<string, string> = { secrets: 'secret', services: 'service', nodes: 'node', certs: 'cert', stacks: 'stack', deploy: 'project', 'join-token': 'join-token', key: 'key', unlock: 'store' };

/**
 * Hooks `res` so that, if the request is one to record, the record is
 * appended before the response ends. `append` never rejects the response: a
 * failed append is logged (the store's log), and the answer still goes out.
 */
export function recordResponse(req: IncomingMessage, res: ServerResponse, append: (entry: AuditEntry) => Promise<unknown>): void {
  const method = (req.method ?? 'GET').toUpperCase();
  const mutation = method !== 'GET' && method !== 'HEAD';
  const url = req.url ?? '/';
  const actor = actorOf(req);
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  let ended = false;
  res.end = ((...args: unknown[]) => {
    const status = res.statusCode;
    const denied = status === 401 || status === 403;
    if (ended || (!mutation && !denied)) return end(...args);
    ended = true;
    const entry = describe(method, url, status, actor, args[0], (req as IncomingMessage & { body?: unknown }).body);
    void append(entry)
      .catch((err: unknown) => log.error({ err: (err as Error).message, audit: entry }, 'could not append to the audit log'))
      .finally(() => end(...args));
    return res;
  }) as typeof res.end;
}

function describe(method: string, url: string, status: number, actor: string, chunk: unknown, requestBody: unknown): AuditEntry {
  const path = url.split('?', 1)[0]!;
  const pattern = acl.routePattern(method, path);
  const reply = parseReply(chunk);
  const ok = status < 400;
  const entry: AuditEntry = {
    time: new Date().toISOString(),
    actor,
    action: status === 401 || status === 403 ? `denied ${ACTIONS[`${method} ${pattern}`] ?? `${method} ${pattern}`}` : (ACTIONS[`${method} ${pattern}`] ?? `${method} ${pattern}`),
    object: objectOf(pattern, path, reply, requestBody),
    result: ok ? 'ok' : (reply.code ?? RESULT_OF_STATUS[status] ?? `error ${status}`),
  };
  const detail = ok ? (reply.version === undefined ? undefined : `version ${reply.version}`) : reply.message;
  if (detail !== undefined) entry.detail = detail;
  return entry;
}

/** "secret/db_password", "node/web-1", "project/shop"; the route's first parameter, else a name from the reply or the request. */
function objectOf(pattern: string, path: string, reply: { name?: string }, requestBody: unknown): string {
  const patternParts = pattern.split('/').filter(Boolean);
  const pathParts = path.split('/').filter(Boolean);
  const offset = patternParts[0] === 'v1' || patternParts[0] === 'v1.NN' ? 1 : 0;
  const collection = (pathParts[offset] ?? '').toLowerCase();
  const kind = KIND[collection] ?? collection;
  const param = patternParts.findIndex((p) => p.startsWith(':'));
  let name: string | undefined;
  if (param >= 0) name = safeDecode(pathParts[param] ?? '');
  else {
    const body = (requestBody ?? {}) as Record<string, unknown>;
    const candidate = reply.name ?? body.name ?? body.project ?? body.Name ?? body.node;
    if (typeof candidate === 'string') name = candidate;
  }
  if (pattern === 'unmatched') return path.slice(0, 200);
  return name === undefined ? kind : `${kind}/${name.slice(0, 200)}`;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The few fields a record may take from a reply: a name, a version, an error's code and message. */
function parseReply(chunk: unknown): { name?: string; version?: number; code?: string; message?: string } {
  if (chunk === undefined || chunk === null) return {};
  const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
  if (!text.startsWith('{')) return {};
  try {
    const body = JSON.parse(text) as { name?: unknown; version?: unknown; error?: { code?: unknown; message?: unknown }; message?: unknown };
    const out: { name?: string; version?: number; code?: string; message?: string } = {};
    if (typeof body.name === 'string') out.name = body.name;
    if (typeof body.version === 'number') out.version = body.version;
    if (typeof body.error?.code === 'string') out.code = body.error.code;
    const message = body.error?.message ?? body.message;
    if (typeof message === 'string') out.message = message.slice(0, 500);
    return out;
  } catch {
    return {};
  }
}
