/**
 * GET /metrics on a real store with a real agent: the numbers follow what
 * happens (secrets, versions, services, nodes, sessions, pushes, acks,
 * request latency by route pattern); roles (auditor yes, operator no); and
 * nothing from a request, no secret name and no value, ends up in it.
 */
import { expect } from 'chai';
import { request } from 'node:http';
import { join } from 'node:path';
import { freePort, startAgentProcess, type AgentProcess } from '../helpers/agent-process.js';
import { call, closeClients } from '../helpers/http.js';
import { httpsCall } from '../helpers/https.js';
import { hushOk, startStoreProcess, stopProcess, waitForCluster, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

/** A scrape over the unix socket: the exposition text and its content type. */
function scrape(socketPath: string): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: 'GET', path: '/metrics' }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of one series (name plus exact label text), or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe('Prometheus metrics (integration)', function () {
  this.timeout(90_000);
  let dir: string;
  let socket: string;
  let store: StoreProcess;
  let adminUrl: string;
  let agent: AgentProcess | undefined;
  let nodePort: number;
  const SECRET_NAME = 'payroll_db_password_zq7';
  const SECRET_VALUE = 'metrics-canary-value-8c1f';
  const cli = (args: string[], input?: string) => hushOk(args, { env: { HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir }, input }).stdout.trim();
  const metrics = async () => {
    const reply = await scrape(socket);
    expect(reply.status).to.equal(200);
    return reply.text;
  };

  before(async () => {
    dir = await tempDir();
    socket = join(dir, 'admin.sock');
    nodePort = await freePort();
    store = await startStoreProcess({ data: join(dir, 'data'), socket, home: dir, extraArgs: ['--listen', `127.0.0.1:${nodePort}`, '--admin', '127.0.0.1:0'] });
    adminUrl = (await waitForCluster(dir)).adminAddress;
  });
  after(async () => {
    closeClients();
    try {
      if (agent) await agent.stop('SIGKILL');
    } finally {
      await stopProcess(store);
      await removeDir(dir);
    }
  });

  it('serves the Prometheus text format with the store counts', async () => {
    const reply = await scrape(socket);
    expect(reply.status).to.equal(200);
    expect(reply.type).to.match(/^text\/plain; version=0\.0\.4/);
    expect(sample(reply.text, 'hush_store_locked')).to.equal(0);
    expect(sample(reply.text, 'hush_secrets')).to.equal(0);
    expect(sample(reply.text, 'hush_secret_versions')).to.equal(0);
    expect(sample(reply.text, 'hush_services')).to.equal(0);
    expect(sample(reply.text, 'hush_node_sessions')).to.equal(0);
    expect(sample(reply.text, 'hush_nodes{state="ready"}')).to.equal(0);
    for (const name of ['hush_node_pushes_total', 'hush_node_acks_total', 'hush_http_request_duration_seconds']) expect(reply.text).to.contain(`# TYPE ${name}`);
  });

  it('follows secrets, versions and services as they change', async () => {
    cli(['secret', 'create', SECRET_NAME, '-'], SECRET_VALUE);
    cli(['secret', 'rotate', SECRET_NAME, '-'], `${SECRET_VALUE}-2`);
    cli(['secret', 'create', 'other', '-'], 'x');
    cli(['service', 'create', 'payroll', '--secret', SECRET_NAME]);
    let text = await metrics();
    expect(sample(text, 'hush_secrets')).to.equal(2);
    expect(sample(text, 'hush_secret_versions')).to.equal(3);
    expect(sample(text, 'hush_services')).to.equal(1);
    cli(['secret', 'rm', 'other']);
    text = await metrics();
    expect(sample(text, 'hush_secrets')).to.equal(1);
    expect(sample(text, 'hush_secret_versions')).to.equal(2);
  });

  it('counts nodes, sessions, pushes and acks as an agent joins and receives a rotation', async () => {
    agent = await startAgentProcess({ store: `127.0.0.1:${nodePort}`, token: cli(['join-token']), name: 'm1', socket: join(dir, 'agent.sock') });
    let text = await metrics();
    expect(sample(text, 'hush_node_sessions')).to.equal(1);
    expect(sample(text, 'hush_nodes{state="ready"}')).to.equal(1);
    expect(sample(text, 'hush_node_pushes_total{kind="snapshot"}')).to.equal(1);

    // A container of the service makes the node entitled: its secret version is pushed (a delta) and acked.
    const acksBefore = sample(text, 'hush_node_acks_total') ?? 0;
    const started = await call(agent.socket, 'POST', '/v1/containers', { id: 'metrics-1', service: 'payroll' });
    expect(started.status, started.text).to.equal(201);
    await until(async () => {
      text = await metrics();
      return (sample(text, 'hush_node_pushed_secret_versions_total') ?? 0) >= 1 && (sample(text, 'hush_node_acks_total') ?? 0) > acksBefore;
    }, 'the delta and its ack', 15_000, 50);
    const deltas = sample(text, 'hush_node_pushes_total{kind="delta"}') ?? 0;
    expect(deltas).to.be.at.least(1);

    cli(['secret', 'rotate', SECRET_NAME, '-'], `${SECRET_VALUE}-3`);
    await until(async () => {
      text = await metrics();
      return sample(text, 'hush_node_pushed_secret_versions_total') === 2;
    }, 'the rotation pushed', 15_000, 50);
    expect(sample(text, 'hush_node_pushes_total{kind="delta"}')).to.be.above(deltas);
    expect((await call(agent.socket, 'DELETE', '/v1/containers/metrics-1')).status).to.equal(204);

    await agent.stop('SIGKILL');
    agent = undefined;
    await until(async () => sample(await metrics(), 'hush_node_sessions') === 0, 'the session closed', 15_000, 50);
  });

  it('times requests by route pattern and never puts request input, a secret name or a value into it', async () => {
    await call(socket, 'GET', `/v1/secrets/${SECRET_NAME}`);
    await call(socket, 'GET', '/v1.41/secrets/evil_label_from_path');
    await call(socket, 'GET', '/this/path/is/chosen/by/a/client');
    await call(socket, 'GET', `/v1/secrets?probe=${SECRET_NAME}`);
    const text = await metrics();
    expect(text).to.match(/hush_http_request_duration_seconds_count\{method="GET",route="\/v1\/secrets\/:name",status="200"\} \d+/);
    expect(text).to.match(/hush_http_request_duration_seconds_count\{method="GET",route="\/v1\.NN\/secrets\/:id",status="404"\} 1/);
    expect(text).to.match(/hush_http_request_duration_seconds_count\{method="GET",route="unmatched",status="404"\} \d+/);
    expect(text).to.match(/hush_http_request_duration_seconds_count\{method="POST",route="\/v1\/secrets",status="201"\} \d+/);
    for (const needle of [SECRET_NAME, SECRET_VALUE, Buffer.from(SECRET_VALUE).toString('base64'), 'evil_label_from_path', 'chosen', 'probe', 'payroll']) {
      expect(text, needle).not.to.contain(needle);
    }
    // Every label value is from a fixed set or the route table.
    for (const [, labels] of text.matchAll(/^hush_\w+\{([^}]*)\}/gm)) {
      for (const [, key, value] of labels!.matchAll(/(\w+)="([^"]*)"/g)) {
        if (key === 'route') expect(value).to.match(/^(unmatched|(\/v1|\/v1\.NN)?\/[a-z_:/.-]+)$/);
        else if (key === 'method') expect(value).to.be.oneOf(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OTHER']);
        else if (key === 'status') expect(value).to.match(/^\d{3}$/);
        else if (key === 'kind') expect(value).to.be.oneOf(['snapshot', 'delta']);
        else if (key === 'state') expect(value).to.be.oneOf(['ready', 'down']);
        else expect(key).to.equal('le');
      }
    }
  });

  it('serves admin and auditor certificates over HTTPS (and operators, who hold every auditor right); the route table decides', async () => {
    for (const role of ['auditor', 'operator']) cli(['cert', 'create', `${role}-m`, '--role', role, '--out', join(dir, role)]);
    const asAdmin = await httpsCall(adminUrl, dir, 'GET', '/metrics');
    expect(asAdmin.status).to.equal(200);
    expect(asAdmin.text).to.contain('hush_secrets 1');
    expect((await httpsCall(adminUrl, join(dir, 'auditor'), 'GET', '/metrics')).status).to.equal(200);
    // Roles nest (admin ⊇ operator ⊇ auditor, src/acl/rbac.ts): promoting an auditor never takes a read away.
    expect((await httpsCall(adminUrl, join(dir, 'operator'), 'GET', '/metrics')).status).to.equal(200);
    // Other spellings land on the same rule or on none (admin only): an auditor cannot reach metrics' neighbours.
    for (const path of ['/v1.41/metrics', '/metrics/../v1/join-token', '//metrics']) {
      const reply = await httpsCall(adminUrl, join(dir, 'auditor'), 'GET', path);
      expect(reply.status, path).to.equal(403);
      expect(reply.text, path).not.to.contain('hush_');
    }
  });
});
