/**
 * Every admin route refuses what it does not define (src/api/request-shape.ts):
 * a body on a route that takes none, a body that is not JSON, a query
 * parameter the route does not document. Each refusal is a 4xx that names
 * the route, and the store's revision does not move.
 */
import { expect } from 'chai';
import { request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { documentedRoutes, revisionOf, seedAdminObjects } from '../helpers/admin-routes.js';
import { call, closeClients, type ErrorBody } from '../helpers/http.js';
import { startStoreProcess, stopProcess, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const TEXT = { 'content-type': 'text/plain' };

/** One request on a connection of its own (no keep-alive pool): the connection's first request. */
function firstRequest(socketPath: string, method: string, path: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('admin API refuses what a route does not define (integration)', function () {
  this.timeout(120_000);
  let dir: string;
  let socket: string;
  let store: StoreProcess | undefined;

  beforeEach(async () => {
    dir = await tempDir();
    socket = join(dir, 'admin.sock');
    store = await startStoreProcess({ data: join(dir, 'data'), socket, home: dir });
    await seedAdminObjects(socket);
  });
  afterEach(async () => {
    closeClients();
    if (store) await stopProcess(store, 'SIGKILL');
    store = undefined;
    await removeDir(dir);
  });

  const joinToken = async () => (await call<{ token: string }>(socket, 'GET', '/v1/join-token')).body.token;
  const certStatus = async (name: string) => (await call<{ name: string; status: string }[]>(socket, 'GET', '/v1/certs')).body.find((c) => c.name === name)?.status;

  it('answers bodies, content types and query parameters a route does not define with a clear 4xx, and changes nothing', async () => {
    const token = await joinToken();
    const before = await revisionOf(socket);
    // [what, method, path, JSON body, raw body, headers, status, code (undefined: Docker's {"message"}), message]
    const cases: [string, string, string, unknown, string | undefined, Record<string, string>, number, string | undefined, RegExp][] = [
      ['key rotate, unknown field', 'POST', '/v1/key/rotate', { junk: 1 }, undefined, {}, 400, 'unknown_field', /^POST \/v1\/key\/rotate takes no body; unknown field "junk"$/],
      ['key rotate, text body', 'POST', '/v1/key/rotate', undefined, 'rotate please', TEXT, 400, 'bad_request', /takes no body \(send none, or \{\}\); got one of Content-Type text\/plain/],
      ['key rotate, JSON array', 'POST', '/v1/key/rotate', [1], undefined, {}, 400, 'bad_request', /takes no body/],
      ['key rotate, JSON scalar', 'POST', '/v1/key/rotate', undefined, '"now"', {}, 400, 'bad_request', /malformed JSON/],
      ['key rotate, unknown query', 'POST', '/v1/key/rotate?force=1', undefined, undefined, {}, 400, 'bad_request', /takes no query parameters; unknown query parameter "force"/],
      ['join-token rotate, text body', 'POST', '/v1/join-token/rotate', undefined, 'junk', TEXT, 400, 'bad_request', /takes a JSON body: Content-Type must be application\/json, not text\/plain/],
      ['join-token rotate, form body', 'POST', '/v1/join-token/rotate', undefined, 'node=n1', FORM, 400, 'bad_request', /must be application\/json/],
      ['join-token rotate, unknown field', 'POST', '/v1/join-token/rotate', { junk: 1 }, undefined, {}, 400, 'unknown_field', /unknown field "junk"/],
      ['join-token rotate, node as a query', 'POST', '/v1/join-token/rotate?node=n1', undefined, undefined, {}, 400, 'bad_request', /unknown query parameter "node"/],
      ['cert revoke, unknown field', 'POST', '/v1/certs/c1/revoke', { reason: 'x' }, undefined, {}, 400, 'unknown_field', /revoke takes no body; unknown field "reason"/],
      ['cert revoke, text body', 'POST', '/v1/certs/c1/revoke', undefined, 'junk', TEXT, 400, 'bad_request', /takes no body/],
      ['secret remove with a body', 'DELETE', '/v1/secrets/existing', { force: true }, undefined, {}, 400, 'unknown_field', /unknown field "force"/],
      ['node remove with a text body', 'DELETE', '/v1/nodes/n1', undefined, 'junk', TEXT, 400, 'bad_request', /takes no body/],
      ['stack remove with a query', 'DELETE', '/v1/stacks/proj?prune=1', undefined, undefined, {}, 400, 'bad_request', /unknown query parameter "prune"/],
      ['secret create, JSON sent as text', 'POST', '/v1/secrets', undefined, '{"name":"t","data":"b2s="}', TEXT, 400, 'bad_request', /takes a JSON body/],
      ['list with a body', 'GET', '/v1/secrets', undefined, 'junk', TEXT, 400, 'bad_request', /GET \/v1\/secrets takes no body/],
      ['health with a query', 'GET', '/healthz?verbose=1', undefined, undefined, {}, 400, 'bad_request', /unknown query parameter "verbose"/],
      ['docker create, JSON sent as text', 'POST', '/v1.41/secrets/create', undefined, '{"Name":"t","Data":"b2s="}', TEXT, 400, undefined, /takes a JSON body/],
      ['docker ls, unknown query', 'GET', '/v1.41/secrets?all=1', undefined, undefined, {}, 400, undefined, /GET \/secrets takes only "filters"; unknown query parameter "all"/],
      ['docker rm with a body', 'DELETE', '/secrets/existing', { junk: 1 }, undefined, {}, 400, undefined, /takes no body/],
      ['docker update, unknown query', 'POST', '/secrets/existing/update?version=1&force=1', { Name: 'existing' }, undefined, {}, 400, undefined, /unknown query parameter "force"/],
      ['gzip over bytes that do not inflate', 'POST', '/v1/secrets', undefined, '{"name":"t","data":"b2s="}', { 'content-encoding': 'gzip' }, 400, 'bad_request', /request body could not be read: incorrect header check/],
      ['bad percent-encoding in a path parameter', 'GET', '/v1/secrets/%ff', undefined, undefined, {}, 400, 'bad_request', /malformed percent-encoding in the request path/],
      ['bad percent-encoding, Docker route', 'DELETE', '/v1.41/secrets/%ff', undefined, undefined, {}, 400, undefined, /malformed percent-encoding/],
      ['unknown route with a body', 'POST', '/v1/nothing', undefined, 'junk', TEXT, 404, 'not_found', /no route for POST \/v1\/nothing/],
    ];
    for (const [what, method, path, body, raw, headers, status, code, message] of cases) {
      const reply = await call<ErrorBody & { message?: string }>(socket, method, path, body, raw, headers);
      expect(reply.status, `${what}: ${reply.text}`).to.equal(status);
      if (code === undefined) expect(reply.body.message, what).to.match(message);
      else {
        expect(reply.body.error.code, what).to.equal(code);
        expect(reply.body.error.message, what).to.match(message);
      }
    }
    // Refused by Node's HTTP parser before any route sees them (a fresh connection each, as a new client's first request):
    // the same JSON error body as every other refusal, not a bare status line.
    const parserCases: [string, string, Record<string, string>, number, string, RegExp][] = [
      ['a URL past the 16 KiB header cap', `/v1/secrets/${'x'.repeat(17_000)}`, {}, 431, 'too_large', /request headers \(URL included\) are larger than 16 KiB/],
      ['a URL past the cap, Docker route', `/v1.41/secrets/${'x'.repeat(17_000)}`, {}, 431, 'too_large', /larger than 16 KiB/],
      ['a header past the cap', '/v1/secrets', { 'x-junk': 'x'.repeat(17_000) }, 431, 'too_large', /larger than 16 KiB/],
    ];
    for (const [what, path, headers, status, code, message] of parserCases) {
      const reply = await firstRequest(socket, 'GET', path, headers);
      expect(reply.status, `${what}: ${reply.text}`).to.equal(status);
      expect(reply.headers['content-type'], what).to.equal('application/json');
      const parsed = JSON.parse(reply.text) as ErrorBody;
      expect(parsed.error.code, what).to.equal(code);
      expect(parsed.error.message, what).to.match(message);
    }
    expect(await revisionOf(socket)).to.equal(before);
    expect(await joinToken()).to.equal(token);
    expect(await certStatus('c1')).to.equal('active');
    expect((await call(socket, 'GET', '/v1/secrets/existing')).status).to.equal(200);
    expect((await call<unknown[]>(socket, 'GET', '/v1/stacks')).body).to.have.length(1);

    // Positive controls: the same routes act when called as clients do (the hush CLI sends {}, the docker CLI an empty text/plain body).
    expect((await call(socket, 'POST', '/v1/key/rotate', {})).status).to.equal(200);
    expect((await call(socket, 'POST', '/v1/key/rotate', undefined, '', TEXT)).status).to.equal(200);
    expect((await call(socket, 'POST', '/v1/join-token/rotate')).status).to.equal(200);
    expect(await joinToken()).not.to.equal(token);
    expect((await call(socket, 'POST', '/v1/certs/c1/revoke', {})).status).to.equal(200);
    expect(await certStatus('c1')).to.equal('revoked');
    expect((await call(socket, 'GET', '/v1.41/secrets?filters=%7B%22name%22%3A%7B%22exist%22%3Atrue%7D%7D')).body).to.have.length(1);
    expect(await revisionOf(socket)).to.be.greaterThan(before);
  });

  it('walks every documented route with junk: always a 4xx, never a change', async () => {
    const junk: [string, unknown, string | undefined, Record<string, string>, string][] = [
      ['a text body', undefined, 'junk', TEXT, ''],
      ['a form body', undefined, 'a=1', FORM, ''],
      ['JSON with an unknown field', { 'hush-junk-field': 1 }, undefined, {}, ''],
      ['a JSON array', [{}], undefined, {}, ''],
      ['an unknown query parameter', undefined, undefined, {}, 'hush-junk-param=1'],
    ];
    const routes = documentedRoutes();
    let tried = 0;
    for (const route of routes) {
      for (const [what, body, raw, headers, query] of junk) {
        const label = `${route.method} ${route.path} with ${what}`;
        const before = await revisionOf(socket);
        const path = query ? `${route.path}${route.path.includes('?') ? '&' : '?'}${query}` : route.path;
        const reply = await call(socket, route.method, path, body, raw, headers);
        expect(reply.status, `${label}: ${reply.text}`).to.be.within(400, 499);
        expect(await revisionOf(socket), label).to.equal(before);
        tried++;
      }
    }
    expect(routes.length).to.be.above(35);
    expect(tried).to.equal(routes.length * junk.length);
  });
});
