/**
 * Template grants end to end with `hush up` and `hush run` (real FUSE): the
 * agent renders the file from the service's secrets, re-renders on rotation
 * of any input (an open file keeps the rendering it opened), and the store
 * refuses a template that references a secret the service is not granted.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { closeClients } from '../helpers/http.js';
import { hush, hushOk, runHush, startHush, type Running } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

describe('template grants (integration, real FUSE)', function () {
  this.timeout(120_000);
  let dir: string;
  let up: Running;
  let env: Record<string, string>;

  const cli = (args: string[], input?: string) => hush(args, { env, input });
  const ok = (args: string[], input?: string) => hushOk(args, { env, input }).stdout;
  const read = async (service: string, file: string) => {
    const r = await runHush(['run', '--service', service, '--', 'cat', `/run/secrets/${file}`], env);
    if (r.code !== 0) throw new Error(`cat ${file}: ${r.stderr}`);
    return r.stdout.toString();
  };

  before(async () => {
    dir = await tempDir('hush-tmpl-');
    env = { HUSH_HOME: dir, HUSH_HOST: '', HUSH_AGENT_SOCKET: '', HUSH_AGENT_DEBUG: '1' };
    up = startHush(['up', '--docker-plugin', 'off', '--home', dir, '--socket', join(dir, 'admin.sock'), '--agent-socket', join(dir, 'agent.sock'), '--mounts', join(dir, 'mounts'), '--listen', '127.0.0.1:0', '--admin', ''], env);
    await until(() => up.stdout().toString().includes('hush is up'), 'hush up to start', 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${up.stderr()}`);
    });
    ok(['secret', 'create', 'db_password', '-'], 'pw-1');
    ok(['secret', 'create', 'db_user', '-'], 'app');
    ok(['secret', 'create', 'app_conf_tmpl', '-'], 'user={{ secret "db_user" }}\npassword={{ secret "db_password" }}\nliteral={{ "{{" }}\n');
  });

  after(async () => {
    closeClients();
    if (up.child.exitCode === null) up.child.kill('SIGKILL');
    await up.finished;
    await removeDir(dir).catch(() => undefined);
  });

  it('refuses at grant time a template that references a secret the service is not granted, and changes nothing', () => {
    const refused = cli(['service', 'create', 'half', '--secret', 'db_user', '--secret', 'app_conf_tmpl,target=app.conf,template=true']);
    expect(refused.status).to.equal(1);
    expect(refused.stderr).to.match(/^error: template "app_conf_tmpl" \(target app.conf\) of service "half" references "db_password", not granted to the service as a file/);
    expect(refused.stderr).to.not.include('password={{');
    expect(cli(['service', 'inspect', 'half']).status).to.equal(1);
    // Nor can a service update add it.
    ok(['service', 'create', 'half', '--secret', 'db_user']);
    const update = cli(['service', 'update', 'half', '--secret-add', 'app_conf_tmpl,target=app.conf,template=true']);
    expect(update.status).to.equal(1);
    expect(update.stderr).to.include('references "db_password"');
    expect(JSON.parse(ok(['service', 'inspect', 'half']))[0].grants).to.have.length(1);
  });

  it('renders the file on the node and renders it again when any input rotates', async () => {
    ok(['service', 'create', 'app', '--secret', 'db_user', '--secret', 'db_password,mode=0400', '--secret', 'app_conf_tmpl,target=app.conf,template=true,mode=0440']);
    expect(await read('app', 'app.conf')).to.equal('user=app\npassword=pw-1\nliteral={{\n');
    const ls = await runHush(['run', '--service', 'app', '--', 'ls', '-ln', '/run/secrets/app.conf'], env);
    expect(ls.stdout.toString()).to.match(/^-r--r----- 1 0 0 /);

    ok(['secret', 'rotate', 'db_password', '-'], 'pw-2');
    await until(async () => (await read('app', 'app.conf')).includes('password=pw-2'), 'the rendering with the new password');
    ok(['secret', 'rotate', 'app_conf_tmpl', '-'], 'dsn=postgres://{{ secret "db_user" }}:{{ secret "db_password" }}@db/app');
    await until(async () => (await read('app', 'app.conf')) === 'dsn=postgres://app:pw-2@db/app', 'the rendering of the new template');
  });

  it('keeps an open rendering while a new open sees the next one', async () => {
    const holder = startHush(['run', '--service', 'app', '--', 'sh', '-c', 'exec 3</run/secrets/app.conf; echo opened; read go; cat <&3; echo; cat /run/secrets/app.conf'], env);
    await until(() => holder.stdout().toString().includes('opened'), 'the file to be opened');
    ok(['secret', 'rotate', 'db_password', '-'], 'pw-3');
    await until(async () => (await read('app', 'app.conf')).includes('pw-3'), 'the new rendering');
    holder.child.stdin!.end('go\n');
    const done = await holder.finished;
    expect(done.stdout.toString()).to.equal('opened\ndsn=postgres://app:pw-2@db/app\ndsn=postgres://app:pw-3@db/app');
  });

  it('does not log values or template text', () => {
    const logs = up.stdout().toString() + up.stderr();
    expect(logs).to.include('rendered a template');
    for (const needle of ['pw-1', 'pw-2', 'pw-3', 'postgres://']) expect(logs).to.not.include(needle);
  });
});
