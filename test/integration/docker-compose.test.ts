/**
 * `hush compose` with Debian's docker-compose (or docker compose v2 when the
 * docker CLI has it) against a private dockerd: a project with two services
 * and file, environment and external secrets comes up with
 * `hush compose -- up -d`, each container reads its own secrets with the
 * owners and modes the file asked for, and `-- down` removes the containers
 * and their mounts. Fails, never skips, when dockerd cannot start.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { call, closeClients } from '../helpers/http.js';
import { hushOk, runHush, startHush, type Running } from '../helpers/hush-process.js';
import { dockerdLogTail, startDockerd, stopDockerSuite, TEST_IMAGE, type Dockerd } from '../helpers/dockerd.js';
import { hushMountsUnder } from '../helpers/mounts.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

describe('hush compose (integration, real dockerd + docker-compose)', function () {
  this.timeout(180_000);
  let dockerd: Dockerd | undefined;
  let dir: string;
  let project: string;
  let mounts: string;
  let agentSocket: string;
  let up: Running | undefined;
  let env: Record<string, string>;
  const plugin = `hush-test-${randomBytes(4).toString('hex')}`;
  const dbPassword = `db-$pass-${randomBytes(6).toString('hex')}`;
  const apiToken = `tok-${randomBytes(6).toString('hex')}`;
  const stripe = `sk-${randomBytes(6).toString('hex')}`;

  const cli = (args: string[], input?: string | Buffer) => hushOk(args, { env, input }).stdout;
  const compose = (args: string[], extraEnv: Record<string, string> = {}) =>
    runHush(['compose', '-c', join(project, 'compose.yaml'), '-p', 'shop', '--volume-driver', plugin, '--', ...args], { ...env, ...dockerd!.env, ...extraEnv }, 120_000);
  const containers = async () => (await call<{ id: string; service: string }[]>(agentSocket, 'GET', '/v1/containers')).body;
  const generatedFiles = async () => (await readdir('/run/hush/compose').catch(() => [] as string[])).filter((f) => f.startsWith('shop-'));

  before(async () => {
    dockerd = await startDockerd();
    dir = await tempDir('hush-compose-');
    mounts = join(dir, 'mounts');
    agentSocket = join(dir, 'agent.sock');
    env = { HUSH_HOME: dir, HUSH_HOST: '', HUSH_AGENT_SOCKET: '', HUSH_AGENT_DEBUG: '1' };
    up = startHush(
      ['up', '--home', dir, '--socket', join(dir, 'admin.sock'), '--agent-socket', agentSocket, '--mounts', mounts, '--listen', '127.0.0.1:0', '--admin', '', '--docker-plugin', plugin, '--docker-host', dockerd.host],
      env,
    );
    await until(() => up!.stdout().toString().includes('hush is up'), 'hush up to print its quickstart', 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${up!.stderr()}`);
    });
    cli(['secret', 'create', 'stripe_key', '-'], stripe);

    project = join(dir, 'shop');
    await mkdir(project);
    await writeFile(join(project, 'db_password.txt'), dbPassword);
    // A relative env_file: resolves against the project directory, as without hush.
    await writeFile(join(project, 'app.env'), 'GREETING=hello-from-env-file\n');
    await writeFile(
      join(project, 'compose.yaml'),
      `services:
  db:
    image: ${TEST_IMAGE}
    command: ["sleep", "300"]
    network_mode: none
    environment:
      PRICE: "costs $$5"
    secrets:
      - source: db_password
        target: password
        uid: "1000"
        gid: "1000"
        mode: 0400
  api:
    image: ${TEST_IMAGE}
    command: ["sleep", "300"]
    network_mode: none
    env_file: ./app.env
    secrets:
      - api_token
      - source: stripe
        target: stripe.key
secrets:
  db_password:
    file: ./db_password.txt
  api_token:
    environment: API_TOKEN
  stripe:
    external: true
    name: stripe_key
`,
    );
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      console.error(`hush up output:\n${up?.stderr().slice(-4000)}`);
      if (dockerd) console.error(`dockerd log:\n${await dockerdLogTail(dockerd)}`);
    }
  });

  after(async () => {
    closeClients();
    await stopDockerSuite({ up, dockerd, plugin, dir });
  });

  it('up -d deploys the project and each container reads its own secrets; down removes them', async () => {
    const upped = await compose(['up', '-d'], { API_TOKEN: apiToken });
    expect(upped.code, upped.stderr).to.equal(0);
    // The deploy's table came first.
    expect(upped.stdout.toString()).to.match(/create +service +shop_db/);
    expect(upped.stdout.toString()).to.match(/external +secret +stripe_key/);
    // The generated file went when compose exited.
    expect(await generatedFiles()).to.deep.equal([]);

    const exec = (service: string, command: string[], user?: string) => dockerd!.docker(['exec', ...(user ? ['--user', user] : []), `shop_${service}_1`, ...command]);
    expect(exec('db', ['ls', '/run/secrets']).stdout.split('\n').filter(Boolean)).to.deep.equal(['password']);
    expect(exec('db', ['stat', '-c', '%u %g %a', '/run/secrets/password']).stdout.trim()).to.equal('1000 1000 400');
    expect(exec('db', ['cat', '/run/secrets/password'], '1000:1000').stdout).to.equal(dbPassword);
    expect(exec('db', ['cat', '/run/secrets/password'], '1001').status).to.not.equal(0);
    // "$" written as "$$" in the generated file: compose reads it as in the user's file.
    expect(exec('db', ['sh', '-c', 'echo "$PRICE"']).stdout.trim()).to.equal('costs $5');

    expect(exec('api', ['ls', '/run/secrets']).stdout.split('\n').filter(Boolean).sort()).to.deep.equal(['api_token', 'stripe.key']);
    expect(exec('api', ['cat', '/run/secrets/api_token']).stdout).to.equal(apiToken);
    expect(exec('api', ['cat', '/run/secrets/stripe.key']).stdout).to.equal(stripe);
    expect(exec('api', ['sh', '-c', 'echo "$GREETING"']).stdout.trim()).to.equal('hello-from-env-file');
    expect((await containers()).map((c) => c.service).sort()).to.deep.equal(['shop_api', 'shop_db']);

    // down needs neither the secret files nor the variables: it sends nothing to the store.
    const down = await compose(['down', '-t', '1']);
    expect(down.code, down.stderr).to.equal(0);
    expect(dockerd!.docker(['ps', '-aq']).stdout.trim()).to.equal('');
    await until(async () => (await containers()).length === 0, 'the agent to unregister the containers');
    expect(await hushMountsUnder(mounts)).to.deep.equal([]);
    expect(await generatedFiles()).to.deep.equal([]);
    // The hush stack stays until `hush stack rm`.
    expect(cli(['service', 'ls'])).to.match(/shop_db/);
  });

  it('a compose error is one line, and nothing is deployed or run', async () => {
    await writeFile(join(project, 'broken.yaml'), `services:\n  x:\n    image: ${TEST_IMAGE}\n    secrets: [nope]\n`);
    const r = await runHush(['compose', '-c', join(project, 'broken.yaml'), '-p', 'broken', '--volume-driver', plugin, '--', 'up', '-d'], { ...env, ...dockerd!.env });
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^error: .*broken\.yaml:4: .*"nope" is not defined/m);
    expect(cli(['service', 'ls'])).to.not.match(/broken_x/);
    expect(dockerd!.docker(['ps', '-aq', '--filter', 'name=broken']).stdout.trim()).to.equal('');
  });
});
