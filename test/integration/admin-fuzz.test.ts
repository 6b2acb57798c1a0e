/**
 * Random admin requests against a real store process: methods × documented
 * paths (and junk paths) × junk bodies, content types, encodings and query
 * parameters, with now and then a well-formed body so that some requests do
 * act. Whatever comes: never a 5xx, the store stays up, and every refused
 * request leaves the revision where it was.
 *
 * HUSH_FUZZ_REQUESTS sets the count (a few hundred in `npm test`, many
 * thousands in `npm run test:security`); HUSH_FUZZ_SEED replays a run: the
 * seed is in every failure message.
 */
import { expect } from 'chai';
import { randomInt } from 'node:crypto';
import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { documentedRoutes, revisionOf, startSeededStore, type AdminRoute, type SeededStore } from '../helpers/admin-routes.js';
import type { StoreProcess } from '../helpers/hush-process.js';

const REQUESTS = Number(process.env.HUSH_FUZZ_REQUESTS ?? 300);
const SEED = Number(process.env.HUSH_FUZZ_SEED ?? randomInt(2 ** 31));

/** mulberry32: a small seeded generator, so a failing run can be replayed exactly. */
function generator(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const chance = (p: number) => next() < p;
  return { int, pick, chance };
}
type Random = ReturnType<typeof generator>;

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];
const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/octet-stream',
  'application/merge-patch+json',
  'multipart/form-data; boundary=x',
];
const KEYS = ['name', 'data', 'labels', 'node', 'key', 'grants', 'constraints', 'generate', 'role', 'ttlSeconds', 'Name', 'Data', 'Labels', 'project', 'secrets', 'services', '__proto__', 'constructor', 'toString', 'junk', ''];
const NAMES = ['existing', 'svc', 'n1', 'c1', 'proj', 'proj_k', 'nope', '..', '%2e%2e', 'a%2Fb', '%ff', 'x'.repeat(300), 'ünï', 'a b', '*', '-rf'];

function junkString(r: Random): string {
  const pieces = ['a', 'Z', '0', '/', '\\', '%', '"', "'", '{', '}', '\u0000', 'é', '😀', '../', '=', '&', '\n', ' '];
  return Array.from({ length: r.int(24) }, () => r.pick(pieces)).join('');
}

function junkJson(r: Random, depth = 0): unknown {
  switch (r.int(depth > 3 ? 5 : 8)) {
    case 0:
      return r.int(1e6) - 5e5;
    case 1:
      return junkString(r);
    case 2:
      return r.chance(0.5);
    case 3:
      return null;
    case 4:
      return Buffer.from(junkString(r)).toString('base64');
    case 5:
      return Array.from({ length: r.int(4) }, () => junkJson(r, depth + 1));
    default:
      return Object.fromEntries(Array.from({ length: r.int(4) }, () => [r.pick(KEYS), junkJson(r, depth + 1)]));
  }
}

/** Bodies that a route could accept, so that some requests act between the refusals. */
function plausibleBody(r: Random, route: AdminRoute): unknown {
  const name = `f${r.int(50)}`;
  const b64 = Buffer.from(`fuzz-value-${r.int(1000)}`).toString('base64');
  const path = route.path.replace(/^\/v1\.41/, '');
  if (path === '/v1/secrets') return { name, data: b64 };
  if (path.endsWith('/rotate') && path.startsWith('/v1/secrets/')) return r.chance(0.5) ? { data: b64 } : { generate: 32 };
  if (path === '/v1/services') return { name, grants: [{ source: r.pick(['existing', 'proj_k', 'nope']) }] };
  if (path.endsWith('/update') && path.startsWith('/v1/services/')) return { constraintAdd: [`node.labels.zone==${name}`] };
  if (path.endsWith('/labels')) return { add: { zone: name } };
  if (path.startsWith('/v1/join-token')) return r.chance(0.5) ? {} : { node: name };
  if (path === '/secrets/create') return { Name: name, Data: b64 };
  if (path === '/v1/deploy') return { project: 'proj', secrets: [{ key: 'k', name: 'proj_k', external: false, labels: {}, data: b64 }], services: [] };
  return {};
}

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

function randomRequest(r: Random, routes: AdminRoute[]): FuzzRequest {
  const route = r.pick(routes);
  const method = r.chance(0.6) ? route.method : r.pick(METHODS);
  let path = route.path;
  if (r.chance(0.15)) path = path.replace(/(existing|svc|n1|c1|proj)(?=\/|$)/, encodeURIComponent(r.pick(NAMES)).replace(/%25/g, '%'));
  if (r.chance(0.1)) path = r.pick(['/v1/', '/v1.99/secrets', '//v1/secrets', '/v1/secrets/', '/V1/KEY/ROTATE', '/v1/secrets/a/b/c', `/${junkString(r).replace(/[^A-Za-z0-9/]/g, '')}`]);
  const query: string[] = [];
  if (r.chance(0.3)) {
    for (let i = r.int(3) + 1; i > 0; i--) {
      const key = r.chance(0.5) && route.query.length > 0 ? r.pick(route.query) : r.pick(KEYS.filter((k) => k !== ''));
      query.push(`${encodeURIComponent(key)}=${encodeURIComponent(junkString(r))}`);
    }
  }
  if (query.length > 0) path += `?${query.join('&')}`;

  const headers: Record<string, string> = {};
  let body: Buffer | undefined;
  switch (r.int(7)) {
    case 0:
      break; // no body
    case 1:
    case 2:
      body = Buffer.from(JSON.stringify(plausibleBody(r, route)));
      break;
    case 3:
      body = Buffer.from(JSON.stringify(junkJson(r)) ?? 'null');
      break;
    case 4:
      body = Buffer.from(junkString(r));
      break;
    case 5:
      // Deep nesting, or a body larger than any limit.
      body = r.chance(0.5) ? Buffer.from(`${'['.repeat(20_000)}${']'.repeat(20_000)}`) : Buffer.alloc(r.pick([1 << 16, 1 << 20, 12 << 20]), 0x61);
      break;
    default:
      body = Buffer.from(Array.from({ length: r.int(64) }, () => r.int(256)));
  }
  if (body !== undefined || r.chance(0.2)) {
    const type = r.chance(0.6) ? 'application/json' : r.pick(CONTENT_TYPES);
    headers['content-type'] = type;
  }
  if (body !== undefined && r.chance(0.1)) {
    headers['content-encoding'] = r.pick(['gzip', 'deflate', 'br', 'identity', 'x-junk']);
    if (headers['content-encoding'] === 'gzip' && r.chance(0.5)) body = gzipSync(body);
  }
  if (body !== undefined) {
    if (r.chance(0.15)) headers['transfer-encoding'] = 'chunked';
    else headers['content-length'] = String(body.length);
  }
  return { method, path, headers, body };
}

/**
 * Sends one request on its own connection. Status 0: the store answered and
 * closed (or just closed) while a body it refused unread was still being
 * sent (EPIPE/ECONNRESET on a large body): a refusal too.
 */
function send(socketPath: string, req: FuzzRequest): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const out = request({ socketPath, method: req.method, path: req.path, headers: req.headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (req.body !== undefined && req.body.length >= 1 << 16 && (err.code === 'EPIPE' || err.code === 'ECONNRESET')) resolve({ status: 0, text: err.code });
      else reject(err);
    });
    out.end(req.body);
  });
}

describe('random admin requests against a real store (integration)', function () {
  this.timeout(Math.max(120_000, REQUESTS * 200));
  let seeded: SeededStore | undefined;
  let socket: string;
  let store: StoreProcess | undefined;

  before(async () => {
    seeded = await startSeededStore();
    ({ socket, store } = seeded);
  });
  after(async () => seeded?.stop());

  it(`answers ${REQUESTS} random requests with no 5xx, stays up, and every refusal changes nothing`, async () => {
    const r = generator(SEED);
    const routes = documentedRoutes();
    const byStatus = new Map<number, number>();
    for (let i = 0; i < REQUESTS; i++) {
      const req = randomRequest(r, routes);
      const where = `seed ${SEED} (HUSH_FUZZ_SEED=${SEED} replays it), request #${i}: ${req.method} ${req.path.slice(0, 200)} ${JSON.stringify(req.headers)}`;
      const before = await revisionOf(socket);
      const reply = await send(socket, req).catch((err: Error) => {
        throw new Error(`${where}: no answer (${err.message}); store output:\n${store!.output().slice(-2000)}`);
      });
      byStatus.set(reply.status, (byStatus.get(reply.status) ?? 0) + 1);
      if (reply.status !== 0) expect(reply.status, `${where}: ${reply.text.slice(0, 300)}`).to.be.within(200, 499);
      if (reply.status >= 400 || reply.status === 0) expect(await revisionOf(socket), `${where}: refused with ${reply.status} but the revision moved`).to.equal(before);
    }
    expect(store!.child.exitCode, 'the store is still running').to.equal(null);
    expect(await revisionOf(socket)).to.be.a('number');
    const refused = [...byStatus].filter(([s]) => s >= 400 || s === 0).reduce((n, [, c]) => n + c, 0);
    // Both sides were exercised: refusals, and requests that acted.
    expect(refused, 'refusals').to.be.above(REQUESTS / 4);
    expect(REQUESTS - refused, 'requests served').to.be.above(REQUESTS / 50);
    console.log(`      seed ${SEED}: ${REQUESTS} requests, by status (0: closed while sending a refused body) ${JSON.stringify(Object.fromEntries([...byStatus].sort(([a], [b]) => a - b)))}`);
  });
});
