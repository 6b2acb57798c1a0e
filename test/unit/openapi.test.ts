/**
 * The OpenAPI document against what the admin app really serves (its
 * express router stack, walked), against docs/api.md, and against the route
 * table's roles. Adding a route without documenting it fails here, and so
 * does documenting a route nobody serves.
 */
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as acl from '../../src/acl/index.js';
import { createAdminApp, createAdminExpress, documentedOperations, openApiDocument, type AdminContext } from '../../src/api/index.js';
import { StoreMetrics } from '../../src/metrics/index.js';
import { openStore, type OpenedStore } from '../../src/store/index.js';
import { call, closeClients } from '../helpers/http.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

interface RouterLayer {
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: RouterLayer[] };
  rawPath?: string | RegExp;
}

/** Where the Docker routes are mounted a second time, as the document's server variable spells it. */
const DOCKER_PREFIX = '/v1.{minor}';
/** Stands for that mount (a RegExp in the router) while walking. */
const DOCKER_MOUNT = '@v1.NN';

/** Every (METHOD, path) the express app routes, mounts resolved; `{}` stands for any path parameter. */
function servedRoutes(stack: RouterLayer[], prefix = ''): string[] {
  const out: string[] = [];
  for (const layer of stack) {
    if (layer.route) {
      // A router's '/' route under a mount is the mount itself ('/v1/secrets' + '/').
      const path = prefix && layer.route.path === '/' ? prefix : prefix + layer.route.path;
      for (const method of Object.keys(layer.route.methods)) out.push(`${method.toUpperCase()} ${normalize(path)}`);
    } else if (layer.handle.stack) {
      const mount = layer.rawPath instanceof RegExp ? DOCKER_MOUNT : layer.rawPath === '/' || layer.rawPath === undefined ? '' : layer.rawPath;
      out.push(...servedRoutes(layer.handle.stack, prefix + mount));
    }
  }
  return out;
}

const normalize = (path: string) => path.replace(/:[A-Za-z0-9_-]+|\{[^}]+\}/g, '{}');

describe('OpenAPI document', () => {
  let dir: string;
  let store: OpenedStore;
  let ctx: AdminContext;

  before(async () => {
    dir = await tempDir();
    store = await openStore({ dataDir: join(dir, 'data') });
    ctx = {
      backend: store.backend,
      keyring: store.keyring,
      secrets: store.secrets,
      services: store.services,
      nodes: store.nodes,
      adminCerts: store.adminCerts,
      stacks: store.stacks,
      rotateKek: () => store.rotateKek(),
      cluster: () => undefined,
      certs: () => undefined,
      randomBytes: (n) => new Uint8Array(n),
      metrics: new StoreMetrics(),
      audit: store.audit,
    };
  });
  after(async () => {
    closeClients();
    await store.backend.close();
    await removeDir(dir);
  });

  const documented = () => documentedOperations().map((op) => `${op.method} ${normalize(op.path)}`);

  it('lists exactly the routes the app serves', () => {
    const app = createAdminExpress(ctx) as unknown as { router: { stack: RouterLayer[] } };
    const served = servedRoutes(app.router.stack);
    expect(served.length).to.be.above(20);
    const unprefixed = served.filter((r) => !r.includes(DOCKER_MOUNT));
    expect([...new Set(unprefixed)].sort(), 'served (left) vs documented (right)').to.deep.equal([...new Set(documented())].sort());
  });

  it('documents the Docker routes under the /v1.NN prefix too, as they are served', () => {
    const app = createAdminExpress(ctx) as unknown as { router: { stack: RouterLayer[] } };
    const prefixed = servedRoutes(app.router.stack)
      .filter((r) => r.includes(DOCKER_MOUNT))
      .map((r) => r.replace(DOCKER_MOUNT, ''));
    const docker = documentedOperations().filter((op) => op.docker).map((op) => `${op.method} ${normalize(op.path)}`);
    expect(prefixed.sort()).to.deep.equal(docker.sort());
    const doc = openApiDocument() as { paths: Record<string, { servers?: { url: string }[] }> };
    for (const op of documentedOperations()) {
      const urls = (doc.paths[op.path]!.servers ?? []).map((s) => s.url);
      expect(urls, op.path).to.deep.equal(op.docker ? ['/', DOCKER_PREFIX] : []);
    }
  });

  it('gives each operation the least role the route table allows, and a 403 where a role is needed', () => {
    const doc = openApiDocument() as { paths: Record<string, Record<string, { 'x-hush-role': string; responses: Record<string, unknown> }>> };
    const expected: Record<string, string> = {
      'GET /v1/secrets': 'auditor',
      'POST /v1/secrets': 'operator',
      'DELETE /v1/secrets/{name}': 'admin',
      'GET /metrics': 'auditor',
      'GET /healthz': 'any',
      'GET /v1/openapi.json': 'any',
      'POST /secrets/create': 'operator',
      'GET /secrets/{id}': 'auditor',
      'DELETE /secrets/{id}': 'admin',
      'GET /_ping': 'any',
      'POST /v1/certs': 'admin',
    };
    for (const [route, role] of Object.entries(expected)) {
      const [method, path] = route.split(' ') as [string, string];
      const op = doc.paths[path]?.[method.toLowerCase()];
      expect(op?.['x-hush-role'], route).to.equal(role);
      if (role !== 'any') expect(op!.responses, route).to.have.property('403');
    }
    // And for every operation: the role agrees with acl.can for the route's action.
    for (const op of documentedOperations()) {
      const role = doc.paths[op.path]![op.method.toLowerCase()]!['x-hush-role'];
      const action = acl.actionForRequest(op.method, op.path.replace(/\{[^}]+\}/g, 'x'));
      if (role === 'any') expect(action, `${op.method} ${op.path}`).to.equal(undefined);
      else expect(acl.can(role, action!), `${op.method} ${op.path}`).to.equal(true);
    }
  });

  it('publishes the request schemas the validators use, and every $ref resolves', () => {
    const doc = openApiDocument() as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } }>>; components: { schemas: Record<string, unknown> } };
    const create = doc.paths['/v1/secrets']!.post!.requestBody!.content['application/json']!.schema;
    expect(create).to.deep.include({ type: 'object', additionalProperties: false, required: ['name', 'data'] });
    const docker = doc.paths['/secrets/create']!.post!.requestBody!.content['application/json']!.schema as { properties: Record<string, unknown> };
    expect(Object.keys(docker.properties)).to.include.members(['Name', 'Labels', 'Data']);
    const text = JSON.stringify(doc);
    expect(text).not.to.match(/"required":\[\]/);
    expect(text).not.to.match(/"type":"null"/);
    for (const [, name] of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) expect(doc.components.schemas, name).to.have.property(name!);
  });

  it('is served at GET /v1/openapi.json', async () => {
    const socket = join(dir, 'admin.sock');
    const server: Server = createServer(createAdminApp(ctx));
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      const reply = await call<{ openapi: string; paths: object }>(socket, 'GET', '/v1/openapi.json');
      expect(reply.status).to.equal(200);
      expect(reply.body.openapi).to.equal('3.0.3');
      expect(reply.body).to.deep.equal(JSON.parse(JSON.stringify(openApiDocument())));
    } finally {
      closeClients();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('agrees with docs/api.md: the same routes, with the same roles', async () => {
    const text = await readFile(fileURLToPath(new URL('../../docs/api.md', import.meta.url)), 'utf8');
    const adminSection = text.split(/^# Agent runtime API/m)[0]!;
    const rows = new Map<string, string>();
    for (const line of adminSection.split('\n')) {
      const cells = line.split('|').map((c) => c.trim());
      if (cells.length < 4 || !cells[1]!.startsWith('`')) continue;
      for (const [, method, path] of cells[1]!.matchAll(/`(GET|HEAD|POST|PUT|PATCH|DELETE) (\/[^\s`?]*)/g)) {
        rows.set(`${method} ${normalize(path!)}`, cells[2]!);
      }
    }
    expect([...rows.keys()].sort(), 'docs/api.md (left) vs the document (right)').to.deep.equal([...new Set(documented())].sort());
    const doc = openApiDocument() as { paths: Record<string, Record<string, { 'x-hush-role': string }>> };
    for (const op of documentedOperations()) {
      expect(rows.get(`${op.method} ${normalize(op.path)}`), `role of ${op.method} ${op.path} in docs/api.md`).to.equal(doc.paths[op.path]![op.method.toLowerCase()]!['x-hush-role']);
    }
  });
});
