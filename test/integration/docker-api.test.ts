/**
 * The Docker-compatible routes at the HTTP level, on a real store: what the
 * docker CLI reads from /_ping, /version, /info; the Engine API shapes and
 * filter semantics; the label-only update; a table of bad requests (each a
 * Docker-shaped 4xx that changes nothing); and roles, also for paths
 * spelled to slip past them.
 */
import { expect } from 'chai';
import { request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { call, closeClients } from '../helpers/http.js';
import { httpsCall } from '../helpers/https.js';
import { hush, startStoreProcess, stopProcess, waitForCluster, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

interface DockerSecret {
  ID: string;
  Version: { Index: number };
  CreatedAt: string;
  UpdatedAt: string;
  Spec: { Name: string; Labels: Record<string, string> };
}

/** Status, headers and body over the unix socket (the shared helper does not return headers). */
function raw(socketPath: string, method: string, path: string): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('Docker-compatible API (integration)', function () {
  this.timeout(60_000);
  let dir: string;
  let socket: string;
  let store: StoreProcess;
  let adminUrl: string;
  const revision = async () => (await call<{ revision: number }>(socket, 'GET', '/healthz')).body.revision;

  before(async () => {
    dir = await tempDir();
    socket = join(dir, 'admin.sock');
    store = await startStoreProcess({ data: join(dir, 'data'), socket, home: dir, extraArgs: ['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'] });
    adminUrl = (await waitForCluster(dir)).adminAddress;
    for (const role of ['auditor', 'operator']) {
      const made = hush(['cert', 'create', role, '--role', role, '--out', join(dir, role)], { env: { HUSH_HOME: dir, HUSH_HOST: '' } });
      expect(made.status, made.stderr).to.equal(0);
    }
  });
  after(async () => {
    closeClients();
    await stopProcess(store);
    await removeDir(dir);
  });

  it('answers the ping the docker CLI sends first, with and without a version prefix', async () => {
    for (const [method, path] of [['HEAD', '/_ping'], ['GET', '/_ping'], ['HEAD', '/v1.41/_ping'], ['GET', '/v1.50/_ping']] as const) {
      const reply = await raw(socket, method, path);
      expect(reply.status, `${method} ${path}`).to.equal(200);
      expect(reply.headers['api-version']).to.equal('1.41');
      expect(reply.headers['ostype']).to.equal('linux');
      expect(reply.headers['docker-experimental']).to.equal('false');
      expect(reply.headers['swarm']).to.equal('active/manager');
      expect(reply.text).to.equal(method === 'HEAD' ? '' : 'OK');
    }
  });

  it('describes itself as a Swarm manager in /info and gives versions in /version', async () => {
    const info = await call<{ OSType: string; Swarm: { LocalNodeState: string; ControlAvailable: boolean; Managers: number } }>(socket, 'GET', '/v1.41/info');
    expect(info.status).to.equal(200);
    expect(info.body.OSType).to.equal('linux');
    expect(info.body.Swarm).to.include({ LocalNodeState: 'active', ControlAvailable: true, Managers: 1 });
    const version = await call<{ ApiVersion: string; MinAPIVersion: string; Os: string }>(socket, 'GET', '/version');
    expect(version.body).to.include({ ApiVersion: '1.41', MinAPIVersion: '1.25', Os: 'linux' });
  });

  it('creates, lists and inspects in the Engine API shapes, never with Data', async () => {
    const created = await call<{ ID: string }>(socket, 'POST', '/v1.41/secrets/create', { Name: 'web_tls_key', Labels: { tier: 'web', env: 'prod' }, Data: b64('tls-key-value') });
    expect(created.status).to.equal(201);
    expect(Object.keys(created.body)).to.deep.equal(['ID']);
    expect(created.body.ID).to.match(/^[a-z0-9]{25}$/);
    await call(socket, 'POST', '/v1.41/secrets/create', { Name: 'web_tls_cert', Labels: { tier: 'web' }, Data: b64('cert') });
    // Without a prefix, and with the Labels a Go client sends when there are none.
    expect((await call(socket, 'POST', '/secrets/create', { Name: 'db_password', Labels: null, Data: b64('pw') })).status).to.equal(201);

    const one = await call<DockerSecret>(socket, 'GET', `/v1.41/secrets/${created.body.ID}`);
    expect(one.status).to.equal(200);
    expect(Object.keys(one.body).sort()).to.deep.equal(['CreatedAt', 'ID', 'Spec', 'UpdatedAt', 'Version']);
    expect(one.body.Spec).to.deep.equal({ Name: 'web_tls_key', Labels: { tier: 'web', env: 'prod' } });
    expect(one.text).not.to.contain(b64('tls-key-value'));
    // By name, and by a unique ID prefix, as Docker resolves them.
    expect((await call<DockerSecret>(socket, 'GET', '/v1.41/secrets/web_tls_key')).body.ID).to.equal(created.body.ID);
    expect((await call<DockerSecret>(socket, 'GET', `/v1.41/secrets/${created.body.ID.slice(0, 12)}`)).body.ID).to.equal(created.body.ID);

    const all = await call<DockerSecret[]>(socket, 'GET', '/v1.41/secrets');
    expect(all.body.map((s) => s.Spec.Name).sort()).to.deep.equal(['db_password', 'web_tls_cert', 'web_tls_key']);
    expect(all.text).not.to.match(/"Data"/);
  });

  it('filters as Docker does: name and id by prefix, names exactly, every label; values of one key are alternatives', async () => {
    const names = async (filters: unknown) => {
      const reply = await call<DockerSecret[]>(socket, 'GET', `/v1.41/secrets?filters=${encodeURIComponent(JSON.stringify(filters))}`);
      expect(reply.status, JSON.stringify(filters)).to.equal(200);
      return reply.body.map((s) => s.Spec.Name).sort();
    };
    const keyId = (await call<DockerSecret>(socket, 'GET', '/v1.41/secrets/web_tls_key')).body.ID;
    expect(await names({ name: { web_tls: true } })).to.deep.equal(['web_tls_cert', 'web_tls_key']);
    expect(await names({ name: ['web_tls'] })).to.deep.equal(['web_tls_cert', 'web_tls_key']);
    expect(await names({ name: { db: true, web_tls_c: true } })).to.deep.equal(['db_password', 'web_tls_cert']);
    expect(await names({ names: { web_tls: true } })).to.deep.equal([]);
    expect(await names({ names: { web_tls_key: true } })).to.deep.equal(['web_tls_key']);
    expect(await names({ id: { [keyId.slice(0, 8)]: true } })).to.deep.equal(['web_tls_key']);
    expect(await names({ label: { tier: true } })).to.deep.equal(['web_tls_cert', 'web_tls_key']);
    expect(await names({ label: { 'tier=web': true, 'env=prod': true } })).to.deep.equal(['web_tls_key']);
    expect(await names({ label: { 'env=dev': true } })).to.deep.equal([]);
    expect(await names({ name: { web: true }, label: { env: true } })).to.deep.equal(['web_tls_key']);
    expect(await names({})).to.have.length(3);
  });

  it('updates labels only, against the Version.Index the caller read', async () => {
    const before = (await call<DockerSecret>(socket, 'GET', '/v1.41/secrets/web_tls_cert')).body;
    const path = (version: unknown) => `/v1.41/secrets/${before.ID}/update${version === undefined ? '' : `?version=${version}`}`;

    const bad: [string, unknown, number, RegExp][] = [
      [path(undefined), { Name: 'web_tls_cert', Labels: {} }, 400, /invalid secret version/],
      [path('abc'), { Name: 'web_tls_cert', Labels: {} }, 400, /invalid secret version/],
      [path(before.Version.Index - 1), { Name: 'web_tls_cert', Labels: {} }, 409, /changed since it was read/],
      [path(before.Version.Index), { Name: 'web_tls_cert', Labels: {}, Data: b64('new value') }, 400, /only updates to Labels are allowed/],
      [path(before.Version.Index), { Name: 'renamed', Labels: {} }, 400, /only updates to Labels are allowed/],
      [path(before.Version.Index), { Labels: {} }, 400, /missing field "Name"/],
      // Moving a secret into a project would let an operator `stack rm` it, which only an admin may remove.
      [path(before.Version.Index), { Name: 'web_tls_cert', Labels: { 'com.docker.stack.namespace': 'shop' } }, 403, /com.docker.stack.namespace is managed by `hush deploy`/],
      [`/v1.41/secrets/no_such_secret/update?version=1`, { Name: 'no_such_secret' }, 404, /secret no_such_secret not found/],
    ];
    const rev = await revision();
    for (const [url, body, status, message] of bad) {
      const reply = await call<{ message: string }>(socket, 'POST', url, body);
      expect(reply.status, `${url} ${JSON.stringify(body)}`).to.equal(status);
      expect(reply.body.message).to.match(message);
    }
    expect(await revision()).to.equal(rev);

    const ok = await call(socket, 'POST', path(before.Version.Index), { Name: 'web_tls_cert', Labels: { tier: 'edge' } });
    expect(ok.status, ok.text).to.equal(200);
    const after = (await call<DockerSecret>(socket, 'GET', '/v1.41/secrets/web_tls_cert')).body;
    expect(after.Spec.Labels).to.deep.equal({ tier: 'edge' });
    expect(after.Version.Index).to.be.above(before.Version.Index);
    // The old version is stale now; the value is untouched (still version 1 in hush).
    expect((await call(socket, 'POST', path(before.Version.Index), { Name: 'web_tls_cert', Labels: {} })).status).to.equal(409);
    const native = await call<{ version: number; labels: Record<string, string> }>(socket, 'GET', '/v1/secrets/web_tls_cert');
    expect(native.body).to.include({ version: 1 });
    expect(native.body.labels).to.deep.equal({ tier: 'edge' });
  });

  it('refuses bad input in Docker\'s error shape and changes nothing', async () => {
    const create = '/v1.41/secrets/create';
    const bad: [unknown, string | undefined, number, RegExp][] = [
      [{ Name: 'x1' }, undefined, 400, /missing field "Data"/],
      [{ Name: 'x1', Data: 'not base64!' }, undefined, 400, /"Data" must be standard base64/],
      [{ Name: 'x1', Data: '' }, undefined, 400, /value is empty/],
      [{ Name: 'bad name', Data: b64('v') }, undefined, 400, /invalid secret name/],
      [{ Name: 'x1', Data: b64('v'), Labels: { a: 1 } }, undefined, 400, /Labels/],
      [{ Name: 'x1', Data: b64('v'), Lables: {} }, undefined, 400, /unknown field "Lables"/],
      [{ Name: 'x1', Data: b64('v'), Driver: { Name: 'vault' } }, undefined, 400, /Driver/],
      [{ Name: 'web_tls_key', Data: b64('v') }, undefined, 409, /already exists/],
      [undefined, '{"Name": "x1", "Data"', 400, /malformed JSON/],
    ];
    const rev = await revision();
    for (const [body, rawBody, status, message] of bad) {
      const reply = await call<{ message: string }>(socket, 'POST', create, body, rawBody);
      expect(reply.status, JSON.stringify(body ?? rawBody)).to.equal(status);
      expect(reply.body.message, JSON.stringify(body ?? rawBody)).to.match(message);
      expect(reply.body).not.to.have.property('error');
    }
    const filters: [string, RegExp][] = [
      ['{"colour":{"red":true}}', /invalid filter 'colour'/],
      ['{"name":', /not valid JSON/],
      ['{"name":{"a":"yes"}}', /invalid filter 'name'/],
      ['{"label":[1]}', /invalid filter 'label'/],
      ['["name"]', /expected a JSON object/],
    ];
    for (const [f, message] of filters) {
      const reply = await call<{ message: string }>(socket, 'GET', `/v1.41/secrets?filters=${encodeURIComponent(f)}`);
      expect(reply.status, f).to.equal(400);
      expect(reply.body.message, f).to.match(message);
    }
    const unknownRoute = await raw(socket, 'GET', '/v1.41/containers/json');
    expect(unknownRoute.status).to.equal(404);
    expect(unknownRoute.headers['content-type']).to.equal('application/json');
    expect((JSON.parse(unknownRoute.text) as { message: string }).message).to.match(/^hush serves only Docker's secrets API \(docker secret create\|ls\|inspect\|rm\), not GET \/v1\.41\/containers\/json/);
    const missing = await call<{ message: string }>(socket, 'DELETE', '/v1.41/secrets/nope');
    expect(missing.status).to.equal(404);
    expect(missing.body.message).to.equal('secret nope not found');
    expect(await revision()).to.equal(rev);
  });

  it('refuses to remove a secret a service uses with Docker\'s status (400), naming the service; the native route keeps its 409', async () => {
    const made = await call(socket, 'POST', '/v1/services', { name: 'docker_user', grants: [{ source: 'db_password' }] });
    expect(made.status, made.text).to.equal(201);
    const rev = await revision();
    const docker = await call<{ message: string }>(socket, 'DELETE', '/v1.41/secrets/db_password');
    expect(docker.status, docker.text).to.equal(400);
    expect(docker.body.message).to.match(/secret "db_password" is used by service docker_user/);
    expect(docker.body).not.to.have.property('error');
    const native = await call<{ error: { code: string } }>(socket, 'DELETE', '/v1/secrets/db_password');
    expect(native.status, native.text).to.equal(409);
    expect(native.body.error.code).to.equal('in_use');
    expect(await revision(), 'a refused removal changes nothing').to.equal(rev);
    expect((await call(socket, 'GET', '/v1.41/secrets/db_password')).status).to.equal(200);
    expect((await call(socket, 'DELETE', '/v1/services/docker_user')).status).to.equal(204);
  });

  it('applies roles over HTTPS; no spelling of a path slips past them', async () => {
    const auditor = join(dir, 'auditor');
    const operator = join(dir, 'operator');
    expect((await httpsCall(adminUrl, auditor, 'GET', '/v1.41/secrets')).status).to.equal(200);
    expect((await httpsCall(adminUrl, auditor, 'GET', '/v1.41/secrets/web_tls_key')).status).to.equal(200);
    expect((await httpsCall(adminUrl, auditor, 'GET', '/v1.41/info')).status).to.equal(200);
    const denied = await httpsCall<{ message: string }>(adminUrl, auditor, 'POST', '/v1.41/secrets/create', { Name: 'by_auditor', Data: b64('x') });
    expect(denied.status).to.equal(403);
    expect(denied.body.message).to.match(/role "auditor" may not secret.write/);
    expect(denied.headers['content-type']).to.equal('application/json');
    expect((await httpsCall(adminUrl, operator, 'DELETE', '/v1.41/secrets/web_tls_key')).status).to.equal(403);
    expect((await httpsCall(adminUrl, operator, 'POST', '/v1.41/secrets/create', { Name: 'by_operator', Data: b64('x') })).status).to.equal(201);
    // Routing ignores case and a trailing slash, so the role check must too (the auditor's 403s below mean something).
    expect((await httpsCall(adminUrl, operator, 'POST', '/V1.41/Secrets/Create/', { Name: 'by_operator2', Data: b64('x') })).status).to.equal(201);

    const rev = await revision();
    const tricks: [string, string, unknown?][] = [
      ['POST', '/v1.41/../v1.41/secrets/create', { Name: 'trick1', Data: b64('x') }],
      ['POST', '/v1.41//secrets/create', { Name: 'trick2', Data: b64('x') }],
      ['POST', '/v1.41/secrets%2Fcreate', { Name: 'trick3', Data: b64('x') }],
      ['POST', '/V1.41/SECRETS/CREATE', { Name: 'trick4', Data: b64('x') }],
      ['POST', '/v1.41/secrets/create/', { Name: 'trick5', Data: b64('x') }],
      ['POST', '/secrets/create', { Name: 'trick6', Data: b64('x') }],
      ['POST', '/v1.41/./secrets/create', { Name: 'trick7', Data: b64('x') }],
      ['POST', '/_ping/../secrets/create', { Name: 'trick8', Data: b64('x') }],
      ['POST', '/v1.41/v1/secrets', { name: 'trick9', data: b64('x') }],
      ['GET', '/v1.41/../v1/join-token'],
      ['GET', '/v1.41/%2e%2e/v1/join-token'],
      ['DELETE', '/v1.41/secrets/web_tls_key/'],
      ['POST', '/v1.41/secrets/web_tls_key/update?version=1', { Name: 'web_tls_key', Labels: {} }],
    ];
    for (const [method, path, body] of tricks) {
      const reply = await httpsCall<{ message?: string; token?: string }>(adminUrl, auditor, method, path, body);
      expect(reply.status, `${method} ${path}`).to.equal(403);
      expect(reply.text).not.to.match(/SWMTKN|HUSH/);
    }
    expect(await revision()).to.equal(rev);
    const names = (await call<DockerSecret[]>(socket, 'GET', '/secrets')).body.map((s) => s.Spec.Name);
    expect(names.filter((n) => n.startsWith('trick'))).to.deep.equal([]);
    expect(names).to.include('web_tls_key');
  });
});
