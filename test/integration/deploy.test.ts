/**
 * Compose deploys end to end, as a user runs them: `hush up` (store + agent),
 * `hush deploy` / `hush stack deploy` on compose files in the style of
 * popular ones, then `hush run --service <project>_<svc>` children reading
 * /run/secrets through real FUSE, as root and as other uids. Refusals (broken
 * files, bad REST bodies, roles) are checked to change nothing: the secret and
 * service lists, and the store revision, are compared before and after.
 */
import { expect } from 'chai';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { call, closeClients, type ErrorBody } from '../helpers/http.js';
import { hush, hushOk, type RunResult } from '../helpers/hush-process.js';
import { runHush, startHush, type Running } from '../helpers/hush-process.js';
import { until } from '../helpers/until.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const FIXTURES = new URL('../fixtures/compose/', import.meta.url).pathname;

describe('hush deploy / hush stack (integration, real FUSE)', function () {
  this.timeout(120_000);
  let dir: string;
  let work: string;
  let socket: string;
  let adminUrl: string;
  let up: Running;
  let env: Record<string, string>;

  const run = (args: string[], extraEnv: Record<string, string> = {}, input?: string): RunResult => hush(args, { env: { ...env, ...extraEnv }, input });
  const cli = (args: string[], extraEnv: Record<string, string> = {}, input?: string): RunResult => hushOk(args, { env: { ...env, ...extraEnv }, input });
  const container = (service: string, command: string[], extra: string[] = []) => runHush(['run', '--service', service, ...extra, '--', ...command], env);
  /** What a refused command must leave as it was. */
  const storeState = async () => ({
    secrets: JSON.parse(cli(['secret', 'ls', '--format', 'json']).stdout) as { name: string; version: number; labels: Record<string, string> }[],
    services: JSON.parse(cli(['service', 'ls', '--format', 'json']).stdout) as { name: string; labels?: Record<string, string> }[],
    revision: (await call<{ revision: number }>(socket, 'GET', '/healthz')).body.revision,
  });
  const versionOf = async (name: string) => (await storeState()).secrets.find((s) => s.name === name)?.version;
  /** Secret versions the store has pushed to nodes so far (its Prometheus counter). */
  const pushedVersions = async () => {
    const text = (await call(socket, 'GET', '/metrics')).text;
    const line = text.split('\n').find((l) => l.startsWith('hush_node_pushed_secret_versions_total '));
    expect(line, 'the pushed-versions counter').to.be.a('string');
    return Number(line!.split(' ')[1]);
  };
  const fixture = (...parts: string[]) => join(work, ...parts);

  before(async () => {
    dir = await tempDir('hush-deploy-');
    work = join(dir, 'compose');
    socket = join(dir, 'admin.sock');
    // A copy: some tests change values in the files.
    await cp(FIXTURES, work, { recursive: true });
    env = { HUSH_HOME: dir, HUSH_HOST: '', HUSH_AGENT_SOCKET: '' };
    up = startHush(['up', '--docker-plugin', 'off', '--home', dir, '--socket', socket, '--agent-socket', join(dir, 'agent.sock'), '--mounts', join(dir, 'mounts'), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], env);
    await until(() => up.stdout().toString().includes('hush is up'), 'hush up to print its quickstart', 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${up.stderr()}`);
    });
    adminUrl = (JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { adminAddress: string }).adminAddress;
    expect(adminUrl).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(`hush up output:\n${up.stderr().slice(-4000)}`);
  });

  after(async () => {
    closeClients();
    if (up.child.exitCode === null) up.child.kill('SIGKILL');
    await up.finished;
    await removeDir(dir).catch(() => undefined);
  });

  it('deploys the postgres file: the password at /run/secrets/db_password, 0444 root, ignored fields listed once', async () => {
    const r = cli(['deploy', '-c', fixture('postgres', 'compose.yaml')]);
    expect(r.stdout).to.match(/^create +secret +postgres_db_password +1$/m);
    expect(r.stdout).to.match(/^create +service +postgres_db +-$/m);
    expect(r.stdout).to.match(/^project postgres: 2 created$/m);
    const ignored = r.stderr.split('\n').filter((l) => l.startsWith('ignored'));
    expect(ignored).to.deep.equal(['ignored (hush applies secrets, grants and placement constraints; it runs no containers): services.*.environment, services.*.healthcheck, services.*.image, services.*.restart, services.*.volumes, volumes']);

    const secret = (await storeState()).secrets.find((s) => s.name === 'postgres_db_password')!;
    expect(secret.labels).to.deep.equal({ 'com.docker.stack.namespace': 'postgres' });
    const read = await container('postgres_db', ['sh', '-c', 'stat -c "%a %u %g" /run/secrets/db_password && cat /run/secrets/db_password']);
    expect(read.code, read.stderr).to.equal(0);
    expect(read.stdout.toString()).to.equal(`444 0 0\n${await readFile(fixture('postgres', 'db_password.txt'), 'utf8')}`);
  });

  it('deploys the nginx TLS bundle as a stack: owners and modes as written, the key readable by uid 101 only', async () => {
    // The file places the proxy on nodes an admin labelled edge=true.
    cli(['node', 'label', hostname(), 'edge=true']);
    const r = cli(['stack', 'deploy', '-c', fixture('nginx-tls', 'compose.yaml'), 'tls']);
    expect(r.stdout).to.match(/^create +service +tls_proxy/m);
    const listing = await container('tls_proxy', ['sh', '-c', 'cd /run/secrets && stat -c "%n %a %u %g" * ']);
    expect(listing.stdout.toString().trim().split('\n')).to.deep.equal(['dhparam.pem 440 0 101', 'site.crt 444 0 0', 'site.key 400 101 101']);
    const asNginx = await container('tls_proxy', ['cat', '/run/secrets/site.key'], ['--user', '101:101']);
    expect(asNginx.code, asNginx.stderr).to.equal(0);
    expect(asNginx.stdout.toString()).to.equal(await readFile(fixture('nginx-tls', 'certs', 'site.key'), 'utf8'));
    const asOther = await container('tls_proxy', ['cat', '/run/secrets/site.key'], ['--user', '1000:1000']);
    expect(asOther.code).to.not.equal(0);
    expect(asOther.stderr).to.match(/Permission denied/);
  });

  it('refuses the multi-service app until its external secrets exist, naming them; then deploys it with .env and environment values', async () => {
    const file = fixture('webapp', 'compose.yaml');
    const before = await storeState();
    const refused = run(['deploy', '-c', file]);
    expect(refused.status).to.equal(1);
    expect(refused.stderr).to.match(/^error: external secrets "stripe_key", "shop_db_password_v2" do not exist; create them first/m);
    expect(await storeState(), 'a refused deploy changes nothing').to.deep.equal(before);

    cli(['secret', 'create', 'stripe_key', '-'], {}, 'sk_test_123');
    cli(['secret', 'create', 'shop_db_password_v2', '-'], {}, 'pg-pass');
    cli(['node', 'label', hostname(), 'zone=eu-west']);
    const r = cli(['deploy', '-c', file], { API_TOKEN: 'tok-from-env' });
    expect(r.stdout).to.match(/^external +secret +stripe_key +1$/m);
    expect(r.stdout).to.match(/^project webapp: 2 external, 5 created$/m);

    const api = await container('webapp_api', ['sh', '-c', 'cd /run/secrets && for f in *; do echo "$f=$(cat $f)"; done']);
    expect(api.code, api.stderr).to.equal(0);
    // The process environment wins over .env.
    expect(api.stdout.toString().trim().split('\n')).to.deep.equal(['api_token=tok-from-env', 'db_password=pg-pass', 'stripe_key=sk_test_123']);
    const web = await container('webapp_web', ['sh', '-c', 'stat -c "%n %a %u %g" /run/secrets/session.key'], ['--user', '1000']);
    expect(web.stdout.toString().trim()).to.equal('/run/secrets/session.key 440 1000 1000');
  });

  it('redeploys unchanged files without new versions or commits', async () => {
    const before = await storeState();
    const r = cli(['deploy', '-c', fixture('postgres', 'compose.yaml')]);
    expect(r.stdout).to.match(/^project postgres: 2 unchanged$/m);
    const again = cli(['deploy', '-c', fixture('webapp', 'compose.yaml')], { API_TOKEN: 'tok-from-env' });
    expect(again.stdout).to.not.match(/^(create|version|update)/m);
    expect(await storeState()).to.deep.equal(before);
  });

  it('--dry-run prints the plan and changes nothing', async () => {
    const before = await storeState();
    const r = cli(['deploy', '-c', fixture('webapp', 'compose.yaml'), '--dry-run'], { API_TOKEN: 'tok-changed' });
    expect(r.stdout).to.match(/^version +secret +webapp_api_token +2$/m);
    expect(r.stdout).to.match(/^project webapp \(dry run, nothing changed\): .*1 to version/m);
    const json = JSON.parse(cli(['deploy', '-c', fixture('postgres', 'compose.yaml'), '-p', 'newproj', '--dry-run', '--format', 'json']).stdout) as { dryRun: boolean; actions: { action: string; name: string }[] };
    expect(json.dryRun).to.equal(true);
    expect(json.actions.map((a) => `${a.action} ${a.name}`)).to.deep.equal(['create newproj_db_password', 'create newproj_db']);
    expect(await storeState()).to.deep.equal(before);
  });

  it('pushes nothing on an unchanged redeploy while a container runs; makes a changed file: value a new version that the container sees without a restart', async () => {
    const holder = startHush(['run', '--service', 'postgres_db', '--', 'sh', '-c', 'echo ready; while :; do cat /run/secrets/db_password; echo; sleep 0.1; done'], env);
    try {
      await until(() => holder.stdout().toString().includes('fake-postgres-password'), 'the holder to read the first value');
      const pushedBefore = await pushedVersions();
      // With a container of the service running (its node entitled), an unchanged redeploy pushes nothing ...
      expect(cli(['deploy', '-c', fixture('postgres', 'compose.yaml')]).stdout).to.match(/^project postgres: 2 unchanged$/m);
      await writeFile(fixture('postgres', 'db_password.txt'), 'rotated-by-deploy');
      const r = cli(['deploy', '-c', fixture('postgres', 'compose.yaml')]);
      expect(r.stdout).to.match(/^version +secret +postgres_db_password +2$/m);
      expect(r.stdout).to.match(/^unchanged +service +postgres_db/m);
      await until(() => holder.stdout().toString().includes('rotated-by-deploy'), 'the running container to see the new version');
      expect(holder.child.exitCode, 'the container kept running').to.equal(null);
      // ... and the changed one pushes exactly the new version, once, to the one node: had the unchanged
      // redeploy pushed a version, it would count here too. (The store counts a push just after sending it.)
      await until(async () => (await pushedVersions()) > pushedBefore, 'the push of the new version to be counted');
      expect((await pushedVersions()) - pushedBefore).to.equal(1);
    } finally {
      holder.child.kill('SIGTERM');
      await holder.finished;
    }
    expect(await versionOf('postgres_db_password')).to.equal(2);
  });

  it('--prune removes the project\'s secrets and services no longer in the files, and nothing else', async () => {
    const project = join(work, 'prunable');
    await mkdir(project, { recursive: true });
    await writeFile(join(project, 'a.txt'), 'a');
    await writeFile(join(project, 'b.txt'), 'b');
    const both = 'services:\n  a:\n    secrets: [a]\n  b:\n    secrets: [b]\nsecrets:\n  a:\n    file: ./a.txt\n  b:\n    file: ./b.txt\n';
    const onlyA = 'services:\n  a:\n    secrets: [a]\nsecrets:\n  a:\n    file: ./a.txt\n';
    await writeFile(join(project, 'compose.yaml'), both);
    cli(['deploy', '-c', join(project, 'compose.yaml')]);
    await writeFile(join(project, 'compose.yaml'), onlyA);

    const kept = cli(['deploy', '-c', join(project, 'compose.yaml')]);
    expect(kept.stdout).to.not.match(/^remove/m);
    expect((await storeState()).services.map((s) => s.name)).to.include('prunable_b');

    const others = (await storeState()).secrets.filter((s) => !s.name.startsWith('prunable_')).map((s) => s.name);
    const pruned = cli(['deploy', '-c', join(project, 'compose.yaml'), '--prune']);
    expect(pruned.stdout).to.match(/^remove +service +prunable_b +-$/m);
    expect(pruned.stdout).to.match(/^remove +secret +prunable_b +-$/m);
    const after = await storeState();
    expect(after.secrets.map((s) => s.name).filter((n) => n.startsWith('prunable_'))).to.deep.equal(['prunable_a']);
    expect(after.services.map((s) => s.name)).to.not.include('prunable_b');
    expect(after.secrets.filter((s) => !s.name.startsWith('prunable_')).map((s) => s.name), 'other projects and handmade secrets stay').to.deep.equal(others);
  });

  it('refuses broken files, each with its message, and changes nothing', async () => {
    const broken = join(work, 'broken');
    await mkdir(join(broken, 'adir'), { recursive: true });
    await writeFile(join(broken, 'good.txt'), 'good');
    const good = '  good:\n    file: ./good.txt\n';
    const table: [string, string, RegExp][] = [
      ['unknown key', `services:\n  app:\n    imagee: nginx\nsecrets:\n${good}`, /^error: .*compose\.yaml:3: services\.app\.imagee: unknown key "imagee"; did you mean "image"\?$/m],
      ['undefined secret', `services:\n  app:\n    secrets: [good, nope]\nsecrets:\n${good}`, /^error: .*compose\.yaml:3: services\.app\.secrets\[1\]: secret "nope" is not defined in the top-level secrets: section$/m],
      ['missing external', `services:\n  app:\n    secrets: [good, ext]\nsecrets:\n${good}  ext:\n    external: true\n    name: missing_one\n`, /^error: external secret "missing_one" does not exist; create it first/m],
      ['bad mode', `services:\n  app:\n    secrets:\n      - source: good\n        mode: "rw"\nsecrets:\n${good}`, /^error: .*compose\.yaml:5: services\.app\.secrets\[0\]\.mode: mode "rw" is not octal/m],
      ['mode out of range', `services:\n  app:\n    secrets:\n      - source: good\n        mode: 0o4755\nsecrets:\n${good}`, /^error: .*compose\.yaml:5: services\.app\.secrets\[0\]\.mode: mode 0o4755 is out of range/m],
      ['../ target', `services:\n  app:\n    secrets:\n      - source: good\n        target: ../../etc/cron.d/x\nsecrets:\n${good}`, /^error: .*compose\.yaml:5: services\.app\.secrets\[0\]\.target: target "\.\.\/\.\.\/etc\/cron\.d\/x" contains "\.\."/m],
      ['absolute target', `services:\n  app:\n    secrets:\n      - source: good\n        target: /etc/shadow\nsecrets:\n${good}`, /hush mounts secrets under \/run\/secrets only/],
      ['missing file', `services:\n  app:\n    secrets: [good, gone]\nsecrets:\n${good}  gone:\n    file: ./gone.txt\n`, /^error: .*compose\.yaml:8: secrets\.gone\.file: cannot read secret file "\.\/gone\.txt" \(.*\): no such file$/m],
      ['directory as file', `services:\n  app:\n    secrets: [good, d]\nsecrets:\n${good}  d:\n    file: ./adir\n`, /cannot read secret file "\.\/adir" .*: not a regular file/],
      ['unset required variable', `services:\n  app:\n    secrets: [good]\n    deploy:\n      placement:\n        constraints: ["node.labels.zone==\${ZONE_X:?ZONE_X must be set}"]\nsecrets:\n${good}`, /ZONE_X must be set/],
    ];
    const before = await storeState();
    for (const [what, yaml, message] of table) {
      await writeFile(join(broken, 'compose.yaml'), yaml);
      const r = run(['deploy', '-c', join(broken, 'compose.yaml')]);
      expect(r.status, `${what}: ${r.stderr}`).to.equal(1);
      expect(r.stderr, what).to.match(message);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('error:')), `${what}: one error line`).to.have.length(1);
      expect(r.stdout, what).to.equal('');
    }
    expect(await storeState()).to.deep.equal(before);
  });

  it('refuses bad POST /v1/deploy bodies with a 4xx and changes nothing', async () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const secret = { key: 'k', name: 'rest_k', external: false, labels: {}, data: b64('v') };
    const service = { name: 'rest_app', grants: [{ source: 'rest_k' }], constraints: [] };
    const ok = { project: 'rest', secrets: [secret], services: [service] };
    const table: [string, unknown, string | undefined, number, RegExp][] = [
      ['malformed JSON', undefined, '{"project": "rest", ', 400, /malformed JSON/],
      ['not an object', undefined, '[1,2]', 400, /expected a JSON object/],
      ['unknown top-level field', { ...ok, prunee: true }, undefined, 400, /unknown field "prunee"/],
      ['unknown secret field', { ...ok, secrets: [{ ...secret, file: './x' }] }, undefined, 400, /unknown field "file"/],
      ['unknown service field', { ...ok, services: [{ ...service, image: 'nginx' }] }, undefined, 400, /unknown field "image"/],
      ['unknown grant field', { ...ok, services: [{ ...service, grants: [{ source: 'rest_k', path: '/x' }] }] }, undefined, 400, /unknown field "path"/],
      ['missing services', { project: 'rest', secrets: [] }, undefined, 400, /missing field "services"/],
      ['bad project name', { ...ok, project: 'Rest!' }, undefined, 400, /invalid project name/],
      ['bad secret name', { ...ok, secrets: [{ ...secret, name: '../etc' }] }, undefined, 400, /invalid secret name "\.\.\/etc"/],
      ['bad service name', { ...ok, services: [{ ...service, name: 'rest_a/b' }] }, undefined, 400, /invalid service name/],
      ['service outside the project', { ...ok, services: [{ ...service, name: 'other_app' }] }, undefined, 400, /named "rest_<service>"/],
      ['../ target', { ...ok, services: [{ ...service, grants: [{ source: 'rest_k', target: '../x' }] }] }, undefined, 400, /target "\.\.\/x" contains "\/"/],
      ['dot-dot target', { ...ok, services: [{ ...service, grants: [{ source: 'rest_k', target: '..' }] }] }, undefined, 400, /target "\.\." is not a file name/],
      ['bad mode', { ...ok, services: [{ ...service, grants: [{ source: 'rest_k', mode: 0o4755 }] }] }, undefined, 400, /mode 2541 is out of range/],
      ['undefined grant source', { ...ok, services: [{ ...service, grants: [{ source: 'rest_nope' }] }] }, undefined, 400, /not one of the plan's secrets/],
      ['bad constraint', { ...ok, services: [{ ...service, constraints: ['node.labels.x=1'] }] }, undefined, 400, /invalid constraint/],
      ['not base64', { ...ok, secrets: [{ ...secret, data: 'not base64!' }] }, undefined, 400, /must be standard base64/],
      ['empty value', { ...ok, secrets: [{ ...secret, data: '' }] }, undefined, 400, /secret value is empty/],
      ['oversized value', { ...ok, secrets: [{ ...secret, data: Buffer.alloc(500 * 1024 + 1).toString('base64') }] }, undefined, 413, /limit is 512000 bytes/],
      ['oversized body', undefined, JSON.stringify({ ...ok, pad: 'x'.repeat(12 * 1024 * 1024) }), 413, /request body is larger than/],
      ['external with data', { ...ok, secrets: [{ ...secret, external: true }] }, undefined, 400, /carries no data/],
      ['missing external', { ...ok, secrets: [{ ...secret, external: true, data: undefined, name: 'rest_missing' }], services: [] }, undefined, 404, /external secret "rest_missing" does not exist/],
      ['foreign secret', { ...ok, secrets: [{ ...secret, name: 'stripe_key' }], services: [] }, undefined, 409, /would take over secret "stripe_key"/],
    ];
    const before = await storeState();
    for (const [what, body, raw, status, message] of table) {
      const reply = await call<ErrorBody>(socket, 'POST', '/v1/deploy', body, raw);
      expect(reply.status, `${what}: ${reply.text.slice(0, 300)}`).to.equal(status);
      expect(reply.body.error.message, what).to.match(message);
    }
    expect(await storeState()).to.deep.equal(before);
    // The same body without the fault is accepted: the table tests the faults, not a broken route.
    expect((await call(socket, 'POST', '/v1/deploy', { ...ok, dryRun: true })).status).to.equal(200);
  });

  it('lists stacks and removes one in one step; removing it again is a clear error', async () => {
    const stacks = JSON.parse(cli(['stack', 'ls', '--format', 'json']).stdout) as { name: string; secrets: number; services: number }[];
    expect(stacks).to.deep.include({ name: 'tls', secrets: 3, services: 1 });
    expect(stacks).to.deep.include({ name: 'webapp', secrets: 2, services: 3 });
    expect(stacks.map((s) => s.name)).to.not.include('stripe_key');
    expect(cli(['stack', 'ls']).stdout).to.match(/^NAME +SECRETS +SERVICES\n(.*\n)*tls +3 +1$/m);

    const revision = (await storeState()).revision;
    const rm = cli(['stack', 'rm', 'tls']);
    expect(rm.stdout.trim().split('\n').sort()).to.deep.equal(['Removing secret tls_dhparam', 'Removing secret tls_site_crt', 'Removing secret tls_site_key', 'Removing service tls_proxy']);
    const after = await storeState();
    expect(after.revision, 'one transaction').to.equal(revision + 1);
    expect(after.secrets.map((s) => s.name).filter((n) => n.startsWith('tls_'))).to.deep.equal([]);
    expect(after.services.map((s) => s.name)).to.not.include('tls_proxy');
    const again = run(['stack', 'rm', 'tls']);
    expect(again.status).to.equal(1);
    expect(again.stderr).to.equal('error: no stack "tls": nothing carries the label com.docker.stack.namespace=tls; `hush stack ls` lists the stacks\n');
  });

  it('updates a service\'s grants and constraints; a running container sees the added file and loses the removed one', async () => {
    cli(['secret', 'create', 'extra_token', '-'], {}, 'extra-value');
    const holder = startHush(['run', '--service', 'postgres_db', '--', 'sh', '-c', 'echo ready; while :; do ls /run/secrets | tr "\\n" " "; echo; sleep 0.1; done'], env);
    try {
      await until(() => holder.stdout().toString().includes('ready'), 'the holder to start');
      cli(['service', 'update', 'postgres_db', '--secret-add', 'extra_token,target=extra,mode=0400', '--constraint-add', 'node.labels.zone==eu-west']);
      await until(() => /^db_password extra $/m.test(holder.stdout().toString()), 'the added file in the running container');
      cli(['service', 'update', 'postgres_db', '--secret-rm', 'extra_token', '--constraint-rm', 'node.labels.zone==eu-west']);
      const seen = holder.stdout().length;
      await until(() => /^db_password $/m.test(holder.stdout().subarray(seen).toString()), 'the removed file gone from the running container');
    } finally {
      holder.child.kill('SIGTERM');
      await holder.finished;
    }
    const svc = JSON.parse(cli(['service', 'inspect', 'postgres_db']).stdout) as { grants: { source: string }[]; constraints: string[]; labels: Record<string, string> }[];
    expect(svc[0]!.grants.map((g) => g.source)).to.deep.equal(['postgres_db_password']);
    expect(svc[0]!.constraints).to.deep.equal([]);
    expect(svc[0]!.labels, 'the project label survives an update').to.deep.equal({ 'com.docker.stack.namespace': 'postgres' });

    const before = await storeState();
    const bad: [string[], number, RegExp][] = [
      [['service', 'update', 'postgres_db'], 2, /^error: nothing to update/],
      [['service', 'update', 'postgres_db', '--secret-add', 'extra_token,target=../x'], 2, /target "\.\.\/x" contains "\/"/],
      [['service', 'update', 'postgres_db', '--secret-add', 'missing_secret'], 1, /^error: service "postgres_db" would be granted secrets that do not exist: missing_secret/],
      [['service', 'update', 'postgres_db', '--secret-add', 'extra_token,target=db_password'], 1, /target "db_password" is already used/],
      [['service', 'update', 'postgres_db', '--secret-rm', 'extra_token'], 1, /^error: service "postgres_db" is not granted secret "extra_token"; nothing to remove/],
      [['service', 'update', 'postgres_db', '--constraint-add', 'node.labels.zone=eu'], 1, /^error: invalid constraint "node\.labels\.zone=eu"/],
      [['service', 'update', 'no_such_service', '--constraint-add', 'node.labels.zone==eu'], 1, /^error: no service named "no_such_service"/],
    ];
    for (const [args, status, message] of bad) {
      const r = run(args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).to.equal(status);
      expect(r.stderr, args.join(' ')).to.match(message);
    }
    expect(await storeState()).to.deep.equal(before);
  });

  it('lets an operator deploy, prune and remove their stack over HTTPS, not other objects; an auditor only reads', async () => {
    const operatorDir = join(dir, 'operator');
    const auditorDir = join(dir, 'auditor');
    cli(['cert', 'create', 'olivia', '--role', 'operator', '--out', operatorDir]);
    cli(['cert', 'create', 'arthur', '--role', 'auditor', '--out', auditorDir]);
    const as = (home: string, args: string[]) => hush(args, { env: { ...env, HUSH_HOME: home, HUSH_HOST: adminUrl } });
    const file = fixture('postgres', 'compose.yaml');

    const deployed = as(operatorDir, ['deploy', '-c', file, '-p', 'opsdb']);
    expect(deployed.status, deployed.stderr).to.equal(0);
    expect(deployed.stdout).to.match(/^project opsdb: 2 created$/m);
    const pruned = as(operatorDir, ['deploy', '-c', file, '-p', 'opsdb', '--prune']);
    expect(pruned.status, pruned.stderr).to.equal(0);

    const before = await storeState();
    const auditorDeploy = as(auditorDir, ['deploy', '-c', file, '-p', 'auditdb']);
    expect(auditorDeploy.status).to.equal(1);
    // The client reads the files first (and lists the ignored fields); the store refuses the role.
    expect(auditorDeploy.stderr).to.match(/\nerror: role "auditor" may not deploy; ask an admin\n$/);
    expect(as(auditorDir, ['stack', 'rm', 'opsdb']).stderr).to.equal('error: role "auditor" may not deploy; ask an admin\n');
    expect(as(auditorDir, ['service', 'update', 'opsdb_db', '--constraint-add', 'node.labels.a==b']).stderr).to.match(/role "auditor" may not service\.write/);
    const auditorLs = as(auditorDir, ['stack', 'ls', '--format', 'json']);
    expect(auditorLs.status, auditorLs.stderr).to.equal(0);
    expect((JSON.parse(auditorLs.stdout) as { name: string }[]).map((s) => s.name)).to.include('opsdb');
    // Removing what is not a stack's stays admin.
    expect(as(operatorDir, ['secret', 'rm', 'stripe_key']).stderr).to.match(/role "operator" may not secret\.delete/);
    expect(await storeState()).to.deep.equal(before);

    const removed = as(operatorDir, ['stack', 'rm', 'opsdb']);
    expect(removed.status, removed.stderr).to.equal(0);
    expect(removed.stdout.trim().split('\n').sort()).to.deep.equal(['Removing secret opsdb_db_password', 'Removing service opsdb_db']);
  });
});
