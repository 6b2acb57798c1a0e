/**
 * Rotation you can watch, end to end: a store process, two real agents with a
 * container each (FUSE mounts), the real CLI. `--wait` returns once both
 * nodes acked, names the lagging node after its timeout (an agent stopped
 * with SIGSTOP cannot ack), and returns at once with no entitled node;
 * propagation, versions, rollback and the audit log as the CLI shows them;
 * a schedule that fell due while the store was down runs at its start.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, startAgentProcess, waitForSession, type AgentProcess } from '../helpers/agent-process.js';
import { call, closeClients } from '../helpers/http.js';
import { hush, hushOk, runHush, startStoreProcess, stopProcess, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

interface Propagation {
  version: number;
  complete: boolean;
  nodes: { node: string; name?: string; version?: number; ackedAt?: string }[];
}

describe('rotation you can watch (store process, two agents, the CLI)', function () {
  this.timeout(180_000);
  let dir: string;
  let socket: string;
  let port: number;
  let store: StoreProcess | undefined;
  const agents: AgentProcess[] = [];
  const value = `db-${randomBytes(12).toString('hex')}`;
  const env = () => ({ HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir });

  const cli = (args: string[], input?: string) => hushOk(args, { env: env(), input }).stdout.trim();
  const startStore = () => startStoreProcess({ data: join(dir, 'data'), socket, home: dir, extraArgs: ['--listen', `127.0.0.1:${port}`, '--admin', ''] });
  const propagation = async (secret: string, version?: number) =>
    (await call<Propagation>(socket, 'GET', `/v1/secrets/${secret}/propagation${version ? `?version=${version}` : ''}`)).body;

  beforeEach(async () => {
    dir = await tempDir('hush-rotation-watch-');
    socket = join(dir, 'admin.sock');
    port = await freePort();
    store = await startStore();
    const token = cli(['join-token']);
    cli(['secret', 'create', 'db_password', '-'], value);
    cli(['secret', 'create', 'lonely', '-'], 'nobody-gets-this');
    cli(['service', 'create', 'api', '--secret', 'db_password,target=db']);
    for (const name of ['node-a', 'node-b']) {
      const agent = await startAgentProcess({ store: `127.0.0.1:${port}`, token, name, socket: join(dir, `${name}.sock`) });
      agents.push(agent);
      await waitForSession(agent);
      const started = await call(agent.socket, 'POST', '/v1/containers', { id: `c-${name}`, service: 'api' });
      expect(started.status, started.text).to.equal(201);
    }
    await until(async () => (await propagation('db_password')).complete && (await propagation('db_password')).nodes.length === 2, 'both nodes to hold version 1');
  });
  afterEach(async () => {
    closeClients();
    for (const a of agents.splice(0)) {
      a.child.kill('SIGCONT');
      await a.stop('SIGKILL');
    }
    if (store) await stopProcess(store, 'SIGKILL');
    store = undefined;
    await removeDir(dir);
  });

  it('rotate --wait returns once both entitled nodes acked; propagation names them, with the version held and when', async () => {
    const done = await runHush(['secret', 'rotate', 'db_password', '--generate', '16', '--charset', 'hex', '--wait', '--timeout', '30'], env());
    expect(done.code, done.stderr).to.equal(0);
    expect(done.stdout.toString()).to.contain('now at version 2');
    // Not a terminal here: plain lines, then the summary.
    expect(done.stderr).to.match(/db_password v2: \d\/2 nodes acked/);
    expect(done.stderr).to.contain('all 2 entitled nodes acknowledged');
    // Returned only once both had acked: at that moment the store says so.
    const p = await propagation('db_password', 2);
    expect(p.complete).to.equal(true);
    expect(p.nodes.map((n) => [n.name, n.version])).to.have.deep.members([
      ['node-a', 2],
      ['node-b', 2],
    ]);
    for (const n of p.nodes) expect(Date.parse(n.ackedAt!)).to.be.above(0);
    // inspect shows it per version.
    const [detail] = JSON.parse(cli(['secret', 'inspect', 'db_password'])) as { versions: { version: number; propagation: Propagation }[] }[];
    expect(detail!.versions.map((v) => [v.version, v.propagation.complete])).to.deep.equal([
      [1, true],
      [2, true],
    ]);
  });

  it('rotate --wait exits 1 after the timeout naming the node that lags; --wait with no entitled node returns at once', async () => {
    const lagging = agents[1]!;
    lagging.child.kill('SIGSTOP');
    const timedOut = await runHush(['secret', 'rotate', 'db_password', '--generate', '8', '--wait', '--timeout', '2'], env());
    expect(timedOut.code).to.equal(1);
    const errorLine = timedOut.stderr.trim().split('\n').at(-1)!;
    expect(errorLine).to.match(/^error: timed out after 2s: 1 of 2 nodes acknowledged db_password v2; lagging: node-b \(/);
    expect(errorLine).not.to.contain('node-a');
    lagging.child.kill('SIGCONT');
    await until(async () => (await propagation('db_password', 2)).complete, 'the resumed node to ack');

    const alone = await runHush(['secret', 'rotate', 'lonely', '--generate', '8', '--wait', '--timeout', '30'], env());
    expect(alone.code, alone.stderr).to.equal(0);
    expect(alone.stderr).to.contain('no node is entitled to lonely');
  });

  it('versions show who made each and how far it reached; rollback --wait delivers the old value as a new version', async () => {
    cli(['secret', 'rotate', 'db_password', '--generate', '8']);
    const back = await runHush(['secret', 'rollback', 'db_password', '--to', '1', '--wait', '--timeout', '30'], env());
    expect(back.code, back.stderr).to.equal(0);
    expect(back.stdout.toString()).to.contain('now at version 3 (the value of version 1)');
    const versions = JSON.parse(cli(['secret', 'versions', 'db_password', '--format', 'json'])) as { version: number; actor: string; origin: string; from?: number; current: boolean; propagation: Propagation }[];
    expect(versions.map((v) => [v.version, v.actor, v.origin, v.from, v.current])).to.deep.equal([
      [1, 'local-root', 'create', undefined, false],
      [2, 'local-root', 'rotate', undefined, false],
      [3, 'local-root', 'rollback', 1, true],
    ]);
    expect(versions[2]!.propagation.complete).to.equal(true);
    const table = cli(['secret', 'versions', 'db_password']);
    expect(table).to.match(/3 .* local-root +rollback to v1 +2\/2 nodes \(complete\) +current/);
    // The agents hold version 3 (the store sent it as any new version).
    const held = await call<{ secrets: { name: string; version: number }[] }>(agents[0]!.socket, 'GET', '/v1/debug/held');
    expect(held.body.secrets.find((s) => s.name === 'db_password')?.version).to.equal(3);
  });

  it('the audit log records changes, refusals and joins (never a value) and verifies', async () => {
    cli(['secret', 'rotate', 'db_password', '--generate', '8']);
    const refused = hush(['secret', 'rollback', 'db_password', '--to', '99'], { env: env() });
    expect(refused.status).to.equal(1);
    const raw = cli(['audit', '--format', 'json']);
    expect(raw).not.to.contain(value);
    const records = JSON.parse(raw) as { seq: number; actor: string; action: string; object: string; result: string }[];
    const seen = records.map((r) => `${r.actor} ${r.action} ${r.object} ${r.result}`);
    expect(seen).to.include.members([
      'local-root secret.create secret/db_password ok',
      'local-root service.create service/api ok',
      'join-token holder node.join node/node-a ok',
      'local-root secret.rotate secret/db_password ok',
      'local-root secret.rollback secret/db_password not_found',
    ]);
    expect(records.map((r) => r.seq)).to.deep.equal(records.map((_, i) => i + 1));
    expect(JSON.parse(cli(['audit', '--actor', 'join-token', '--format', 'json'])).length).to.equal(2);
    expect(cli(['audit', '--verify'])).to.match(/^audit log intact: \d+ records/);
  });

  it('deploy --wait waits for the versions the deploy made to reach the entitled nodes', async () => {
    await writeFile(join(dir, 'compose.yaml'), 'services:\n  web:\n    image: x\n    secrets: [token]\nsecrets:\n  token:\n    file: ./token.txt\n');
    await writeFile(join(dir, 'token.txt'), 'first');
    cli(['deploy', '-c', join(dir, 'compose.yaml'), '-p', 'shop']);
    const started = await call(agents[0]!.socket, 'POST', '/v1/containers', { id: 'c-shop', service: 'shop_web' });
    expect(started.status, started.text).to.equal(201);
    await writeFile(join(dir, 'token.txt'), 'second');
    const done = await runHush(['deploy', '-c', join(dir, 'compose.yaml'), '-p', 'shop', '--wait', '--timeout', '30'], env());
    expect(done.code, done.stderr).to.equal(0);
    expect(done.stderr).to.contain('shop_token v2: all 1 entitled node acknowledged');
  });
});

describe('rotation schedules across a store restart (store process, the CLI)', function () {
  this.timeout(120_000);
  let dir: string;
  let socket: string;
  let store: StoreProcess | undefined;
  const env = () => ({ HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir });
  const cli = (args: string[], input?: string) => hushOk(args, { env: env(), input }).stdout.trim();
  const startStore = async () => startStoreProcess({ data: join(dir, 'data'), socket, home: dir, extraArgs: ['--listen', `127.0.0.1:${await freePort()}`, '--admin', ''] });
  const version = () => (JSON.parse(cli(['secret', 'inspect', 'api_token'])) as { version: number }[])[0]!.version;

  beforeEach(async () => {
    dir = await tempDir('hush-schedule-');
    socket = join(dir, 'admin.sock');
    store = await startStore();
  });
  afterEach(async () => {
    if (store) await stopProcess(store, 'SIGKILL');
    store = undefined;
    await removeDir(dir);
  });

  it('--every sets a durable policy shown by inspect; a rotation due while the store was down runs at start; --every off removes it', async () => {
    cli(['secret', 'create', 'api_token', '-'], 'initial');
    const set = cli(['secret', 'rotate', 'api_token', '--every', '3s', '--generate', '24', '--charset', 'alnum', '--now']);
    expect(set).to.match(/a new 24-byte value every 3s; next at /);
    expect(set).to.contain('now at version 2');
    const [detail] = JSON.parse(cli(['secret', 'inspect', 'api_token'])) as { schedule: { every: string; charset: string; nextDue: string }; versions: { origin: string }[] }[];
    expect(detail!.schedule).to.deep.include({ every: '3s', charset: 'alnum' });
    expect(detail!.versions.map((v) => v.origin)).to.deep.equal(['create', 'rotate']);
    // Down across the due time.
    await stopProcess(store!, 'SIGTERM');
    store = undefined;
    const downFor = Date.parse(detail!.schedule.nextDue) - Date.now() + 500;
    await new Promise((r) => setTimeout(r, Math.max(0, downFor)));
    store = await startStore();
    await until(() => version() >= 3, 'the missed rotation to run at start', 10_000, 100);
    const audit = JSON.parse(cli(['audit', '--actor', 'scheduler', '--format', 'json'])) as { action: string; result: string }[];
    expect(audit.map((r) => `${r.action} ${r.result}`)).to.include('secret.rotate ok');
    expect(cli(['secret', 'rotate', 'api_token', '--every', 'off'])).to.contain('schedule removed');
    expect((JSON.parse(cli(['secret', 'inspect', 'api_token'])) as { schedule?: unknown }[])[0]!.schedule).to.equal(undefined);
    const bad = hush(['secret', 'rotate', 'api_token', '--every', '3s'], { env: env() });
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.contain('--every needs --generate');
  });
});
