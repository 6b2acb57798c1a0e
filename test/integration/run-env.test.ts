/**
 * `hush run --env VAR=TARGET` with `hush up` and real FUSE mounts: the value
 * reaches the command's environment and nothing else (no argument list, no
 * log), a rotation restarts the command with --restart-on-rotate and leaves
 * the old value otherwise (said at start), and bad input is refused with a
 * clear error that shows no value and leaves no container behind.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { call, closeClients } from '../helpers/http.js';
import { hushOk, runHush, startHush, type Running } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

describe('hush run --env (integration, real FUSE)', function () {
  this.timeout(120_000);
  let dir: string;
  let agentSocket: string;
  let up: Running;
  let env: Record<string, string>;
  // Random, so finding one anywhere cannot be a coincidence.
  const first = `pw-${randomBytes(10).toString('hex')}`;
  const second = `pw-${randomBytes(10).toString('hex')}`;
  const running: Running[] = [];

  const cli = (args: string[], input?: string | Buffer) => hushOk(args, { env, input }).stdout;
  const containers = async () => (await call<{ id: string }[]>(agentSocket, 'GET', '/v1/containers')).body;

  before(async () => {
    dir = await tempDir('hush-run-env-');
    agentSocket = join(dir, 'agent.sock');
    env = { HUSH_HOME: dir, HUSH_HOST: '', HUSH_AGENT_SOCKET: '', HUSH_AGENT_DEBUG: '1' };
    up = startHush(['up', '--docker-plugin', 'off', '--home', dir, '--socket', join(dir, 'admin.sock'), '--agent-socket', agentSocket, '--mounts', join(dir, 'mounts'), '--listen', '127.0.0.1:0', '--admin', ''], { ...env, HUSH_LOG_LEVEL: 'debug' });
    await until(() => up.stdout().toString().includes('hush is up'), 'hush up to print its quickstart', 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${up.stderr()}`);
    });
    cli(['secret', 'create', 'db_password', '-'], first);
    cli(['secret', 'create', 'nul_value', '-'], Buffer.from([0x61, 0, 0x62]));
    cli(['service', 'create', 'app', '--secret', 'db_password,target=password', '--secret', 'db_password,target=owned,uid=1000,gid=1000,mode=0400', '--secret', 'nul_value']);
  });

  after(async () => {
    for (const r of running) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    closeClients();
    if (up.child.exitCode === null) up.child.kill('SIGKILL');
    await up.finished;
    await removeDir(dir).catch(() => undefined);
  });

  it('puts the value in the command\'s environment only: not in any argument list, not in a log', async () => {
    const started = startHush(['run', '--service', 'app', '--env', 'DB_PASSWORD=password', '--', 'sh', '-c', 'echo "value=$DB_PASSWORD"; echo ready; while :; do sleep 0.05; done'], env);
    running.push(started);
    await until(() => started.stdout().toString().includes('ready'), 'the command to start');
    expect(started.stdout().toString()).to.include(`value=${first}\n`);
    // Every process of the chain (hush run, setpriv, unshare, tini, sh): no argument list holds the value.
    const pids = await listDescendants(started.child.pid!);
    expect(pids.length).to.be.greaterThan(3);
    for (const pid of [started.child.pid!, ...pids]) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`).catch(() => Buffer.alloc(0));
      expect(cmdline.includes(first), `argv of ${pid}: ${cmdline.toString().replace(/\0/g, ' ')}`).to.equal(false);
    }
    // The positive control: the value is in the command's environment, where it was asked for.
    const environs = await Promise.all(pids.map((pid) => readFile(`/proc/${pid}/environ`).catch(() => Buffer.alloc(0))));
    expect(environs.some((e) => e.includes(`DB_PASSWORD=${first}`))).to.equal(true);
    // No rotation behaviour was asked for: it says the value stays.
    expect(started.stderr()).to.match(/hush run: DB_PASSWORD keeps the value it starts with; a rotation does not change it/);
    started.child.kill('SIGTERM');
    await started.finished;
    expect(up.stdout().toString() + up.stderr()).to.not.include(first);
    expect(started.stderr()).to.not.include(first);
  });

  it('restarts the command with the new value on rotation with --restart-on-rotate', async () => {
    const started = startHush(['run', '--service', 'app', '--env', 'DB_PASSWORD=password', '--restart-on-rotate', '--', 'sh', '-c', 'echo "value=$DB_PASSWORD"; while :; do sleep 0.05; done'], env);
    running.push(started);
    await until(() => started.stdout().toString().includes('value='), 'the command to start');
    cli(['secret', 'rotate', 'db_password', '-'], second);
    await until(() => started.stdout().toString().includes(`value=${second}`), 'the command to restart with the new value');
    expect(started.stdout().toString().match(/value=/g)).to.have.length(2);
    expect(started.stderr()).to.include('a secret in the environment has a new version; restarting the command');
    expect(started.stderr()).to.not.include(second);
    started.child.kill('SIGTERM');
    const done = await started.finished;
    expect(done.code).to.equal(143);
  });

  it('without --restart-on-rotate the command keeps the value it started with', async () => {
    const current = (await runHush(['run', '--service', 'app', '--env', 'P=password', '--', 'sh', '-c', 'printf %s "$P"'], env)).stdout.toString();
    const started = startHush(['run', '--service', 'app', '--env', 'P=password', '--', 'sh', '-c', 'read line; printf "%s|%s" "$P" "$(cat /run/secrets/password)"'], env);
    running.push(started);
    await until(async () => (await containers()).length === 1, 'the container to be registered');
    const next = `pw-${randomBytes(10).toString('hex')}`;
    cli(['secret', 'rotate', 'db_password', '-'], next);
    await new Promise((r) => setTimeout(r, 500));
    started.child.stdin!.end('go\n');
    const done = await started.finished;
    expect(done.stdout.toString()).to.equal(`${current}|${next}`);
  });

  it('refuses bad input with a clear error that shows no value, and leaves no container registered', async () => {
    const cases: [string[], number, RegExp][] = [
      [['--env', '1X=password'], 2, /use VAR=TARGET/],
      [['--env', 'X'], 2, /use VAR=TARGET/],
      [['--env', 'X=../password'], 2, /TARGET is the target file name/],
      [['--env', 'X=password', '--env', 'X=owned'], 2, /--env X is given twice/],
      [['--restart-on-rotate'], 2, /--restart-on-rotate restarts the command when a value given with --env changes/],
      [['--env', 'X=password', '--restart-on-rotate', '--reload-signal', 'HUP'], 2, /cannot be used with option '--reload-signal/],
      [['--env', 'X=missing'], 1, /^error: --env X=missing: service "app" has no grant with target "missing"$/m],
      [['--env', 'X=nul_value'], 1, /^error: --env X=nul_value: the value contains a NUL byte/m],
      // A 0400 file of uid 1000: user 1000 gets it, user 2000 may not, not even through the environment.
      [['--env', 'X=owned', '--user', '2000'], 1, /^error: --env X=owned: user 2000:2000 may not read it \(the grant gives it to 1000:1000 with mode 0400\)$/m],
    ];
    for (const [flags, code, message] of cases) {
      const r = await runHush(['run', '--service', 'app', ...flags, '--', 'true'], env);
      expect(r.code, `${flags.join(' ')}: ${r.stderr}`).to.equal(code);
      expect(r.stderr, flags.join(' ')).to.match(message);
      expect(r.stderr).to.not.include('pw-');
    }
    const owner = await runHush(['run', '--service', 'app', '--env', 'X=owned', '--user', '1000', '--', 'sh', '-c', 'printf %s "$X"'], env);
    expect(owner.code, owner.stderr).to.equal(0);
    expect(owner.stdout.toString()).to.match(/^pw-/);
    expect(await containers()).to.deep.equal([]);
  });
});

/** The pids below `pid`, from /proc (children of children). */
async function listDescendants(pid: number): Promise<number[]> {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    const children = await readFile(`/proc/${parent}/task/${parent}/children`, 'utf8').catch(() => '');
    for (const c of children.split(' ').filter(Boolean).map(Number)) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}
