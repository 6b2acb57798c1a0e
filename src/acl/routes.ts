/**
 * Which Action an admin HTTP request needs. Undefined means the route is
 * safe without a role (/_ping, /healthz, /version: the docker CLI probes them
 * before anything else). A route not in the table is 'unclassified', which
 * only an admin may call, so a new route is closed until someone adds it here.
 *
 * The matching mirrors express's defaults (case-insensitive, optional trailing
 * slash) so that a request cannot reach a handler while dodging its rule.
 */
import type { Action } from './rbac.js';

const PUBLIC = 'public';
type Rule = readonly [methods: string, pattern: string, action: Action | typeof PUBLIC];

/** Native API, under /v1. `:x` matches one path segment. */
const NATIVE: readonly Rule[] = [
  ['GET', '/secrets', 'secret.read'],
  ['POST', '/secrets', 'secret.write'],
  ['GET', '/secrets/:name', 'secret.read'],
  ['DELETE', '/secrets/:name', 'secret.delete'],
  ['POST', '/secrets/:name/rotate', 'secret.write'],
  ['GET', '/secrets/:name/propagation', 'secret.read'],
  ['GET', '/secrets/:name/versions', 'secret.read'],
  // A rollback is a new version (of an older value); a schedule makes new versions: both as a rotation.
  ['POST', '/secrets/:name/rollback', 'secret.write'],
  ['PUT DELETE', '/secrets/:name/schedule', 'secret.write'],
  ['GET', '/services', 'service.read'],
  ['POST', '/services', 'service.write'],
  ['GET', '/services/:name', 'service.read'],
  ['POST PUT PATCH DELETE', '/services/:name', 'service.write'],
  ['GET', '/nodes', 'node.read'],
  ['GET', '/nodes/:name', 'node.read'],
  ['POST PUT PATCH DELETE', '/nodes/:name', 'node.write'],
  ['GET', '/nodes/:name/labels', 'node.read'],
  ['POST PUT PATCH DELETE', '/nodes/:name/labels', 'node.write'],
  ['POST', '/services/:name/update', 'service.write'],
  ['POST', '/deploy', 'deploy'],
  // Removes only what carries the project's label (see store/stacks.ts), so an operator may; other removals stay admin.
  ['GET', '/stacks', 'service.read'],
  ['DELETE', '/stacks/:name', 'deploy'],
  ['GET', '/audit', 'audit.read'],
  // Who read which secret version: names, versions and times, as sensitive as the log.
  ['GET', '/audit/reads', 'audit.read'],
  // Verifying the hash chain only reads it.
  ['GET POST', '/audit/verify', 'audit.read'],
  ['GET', '/join-token', 'token.read'],
  ['POST', '/join-token', 'token.rotate'],
  ['POST', '/join-token/rotate', 'token.rotate'],
  ['POST', '/key/rotate', 'key.rotate'],
  // A new cluster CA replaces a key as much as a KEK rotation does; its status shows fingerprints and node names only.
  ['GET', '/ca', 'cert.read'],
  ['POST', '/ca/rotate', 'key.rotate'],
  ['GET', '/certs', 'cert.read'],
  ['POST', '/certs', 'cert.issue'],
  ['POST', '/certs/:name/renew', 'cert.issue'],
  ['POST', '/certs/:name/revoke', 'cert.revoke'],
  ['POST', '/unlock', 'store.unlock'],
  // The API's own description: no data, and clients read it before they know their role.
  ['GET', '/openapi.json', PUBLIC],
];

/** Docker Engine API subset, with or without a /v1.NN prefix. */
const DOCKER: readonly Rule[] = [
  ['GET', '/_ping', PUBLIC],
  ['GET', '/version', PUBLIC],
  ['GET', '/info', 'node.read'],
  ['GET', '/secrets', 'secret.read'],
  ['POST', '/secrets/create', 'secret.write'],
  ['GET', '/secrets/:id', 'secret.read'],
  ['DELETE', '/secrets/:id', 'secret.delete'],
  ['POST', '/secrets/:id/update', 'secret.write'],
];

const ROOT: readonly Rule[] = [
  ['GET', '/healthz', PUBLIC],
  ['GET', '/metrics', 'metrics.read'],
];

const DOCKER_VERSION = /^v1\.\d+$/i;

export function actionForRequest(method: string, path: string): Action | undefined {
  const rule = ruleForRequest(method, path);
  if (rule === undefined) return 'unclassified';
  const action = rule.rule[2];
  return action === PUBLIC ? undefined : action;
}

/**
 * The route pattern a request matches, for metrics labels: a constant from
 * the table above ("/v1/secrets/:name", "/v1.NN/secrets/:id"), or
 * "unmatched". Never built from the request's own path.
 */
export function routePattern(method: string, path: string): string {
  const found = ruleForRequest(method, path);
  if (found === undefined) return 'unmatched';
  return found.prefix + found.rule[1];
}

function ruleForRequest(method: string, path: string): { rule: Rule; prefix: string } | undefined {
  const verb = method.toUpperCase() === 'HEAD' ? 'GET' : method.toUpperCase();
  const segments = splitPath(path);
  if (segments === undefined) return undefined;

  let table: readonly Rule[];
  let rest: string[];
  let prefix: string;
  const first = segments[0]?.toLowerCase();
  if (first === 'v1') {
    table = NATIVE;
    rest = segments.slice(1);
    prefix = '/v1';
  } else if (first !== undefined && DOCKER_VERSION.test(first)) {
    table = DOCKER;
    rest = segments.slice(1);
    prefix = '/v1.NN';
  } else {
    table = [...ROOT, ...DOCKER];
    rest = segments;
    prefix = '';
  }
  for (const rule of table) {
    if (!rule[0].split(' ').includes(verb)) continue;
    if (!matches(rule[1], rest)) continue;
    return { rule, prefix };
  }
  return undefined;
}

/**
 * Decoded path segments, or undefined for a path that no honest client sends
 * and that a router might resolve differently from us: "." or "..", "//",
 * an encoded "/", or bad percent-encoding.
 */
function splitPath(path: string): string[] | undefined {
  const bare = path.split(/[?#]/, 1)[0] ?? '';
  if (!bare.startsWith('/')) return undefined;
  const parts = bare.slice(1).split('/');
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  if (parts.length === 1 && parts[0] === '') return [];
  const out: string[] = [];
  for (const raw of parts) {
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    if (seg === '' || seg === '.' || seg === '..' || seg.includes('/') || seg.includes('\\')) return undefined;
    out.push(seg);
  }
  return out;
}

function matches(pattern: string, segments: readonly string[]): boolean {
  const want = pattern.slice(1).split('/');
  if (want.length !== segments.length) return false;
  return want.every((w, i) => w.startsWith(':') || w === (segments[i] ?? '').toLowerCase());
}
