/**
 * The container read path as users touch it: `hush up` (store + agent in one
 * process), then `hush run` children reading /run/secrets through real FUSE
 * mounts in their own mount namespaces, as root and as other uids.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { chmod, mkdir, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { call, closeClients } from '../helpers/http.js';
import { hushOk, runHush, startHush, type Running } from '../helpers/hush-process.js';
import { hushMountsUnder } from '../helpers/mounts.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('hush up + hush run (integration, real FUSE)', function () {
  this.timeout(120_000);
  let dir: string;
  let mounts: string;
  let agentSocket: string;
  let up: Running;
  let env: Record<string, string>;
  const text = `text-${randomBytes(8).toString('hex')}\n`;
  const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const big = randomBytes(500 * 1024);
  const other = `other-${randomBytes(8).toString('hex')}`;

  const cli = (args: string[], input?: string | Buffer) => hushOk(args, { env, input }).stdout;
  const run = (service: string, command: string[], extra: string[] = []) => runHush(['run', '--service', service, ...extra, '--', ...command], env);
  const containers = async () => (await call<{ id: string; service: string; mount: string }[]>(agentSocket, 'GET', '/v1/containers')).body;

  /** Starts `hush up` on the suite's home (again, after a test stopped it: it reuses its data). */
  const startUp = async () => {
    up = startHush(['up', '--docker-plugin', 'off', '--home', dir, '--socket', join(dir, 'admin.sock'), '--agent-socket', agentSocket, '--mounts', mounts, '--listen', '127.0.0.1:0', '--admin', ''], env);
    await until(() => up.stdout().toString().includes('hush is up'), 'hush up to print its quickstart', 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${up.stderr()}`);
    });
  };
  const upIsRunning = () => up.child.exitCode === null && up.child.signalCode === null;

  before(async () => {
    dir = await tempDir('hush-run-');
    mounts = join(dir, 'mounts');
    agentSocket = join(dir, 'agent.sock');
    env = { HUSH_HOME: dir, HUSH_HOST: '', HUSH_AGENT_SOCKET: '', HUSH_AGENT_DEBUG: '1' };
    await startUp();
    await writeFile(join(dir, 'binary'), binary);
    await writeFile(join(dir, 'big'), big);
    cli(['secret', 'create', 'text', '-'], text);
    cli(['secret', 'create', 'binary', join(dir, 'binary')]);
    cli(['secret', 'create', 'big', join(dir, 'big')]);
    cli(['secret', 'create', 'other', '-'], other);
    cli(['service', 'create', 'a', '--secret', 'text', '--secret', 'binary,target=bin.dat', '--secret', 'big', '--secret', 'text,target=owned,uid=1000,gid=1000,mode=0400']);
    cli(['service', 'create', 'b', '--secret', 'other']);
    cli(['service', 'create', 'empty']);
    cli(['service', 'create', 'c', '--secret', 'text,target=db,uid=999,gid=999,mode=0400']);
    // Placed by an admin label on hush up's own node (named after the host): it must outlive a restart.
    cli(['service', 'create', 'placed', '--secret', 'other', '--constraint', 'node.labels.zone==eu']);
    cli(['node', 'label', hostname(), 'zone=eu']);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(`hush up output:\n${up.stderr().slice(-4000)}`);
    // A test that stops hush up leaves the next one a running one all the same.
    if (!upIsRunning()) await startUp();
  });

  after(async () => {
    closeClients();
    if (up.child.exitCode === null) up.child.kill('SIGKILL');
    await up.finished;
    await removeDir(dir).catch(() => undefined);
  });

  it('gives a child process the exact bytes: text, binary, 500 KiB', async () => {
    expect((await run('a', ['cat', '/run/secrets/text'])).stdout.toString()).to.equal(text);
    expect((await run('a', ['cat', '/run/secrets/bin.dat'])).stdout.equals(binary)).to.equal(true);
    const read = await run('a', ['cat', '/run/secrets/big']);
    expect(read.code, read.stderr).to.equal(0);
    expect(sha256(read.stdout)).to.equal(sha256(big));
  });

  it('shows the granted modes and owners in ls -l', async () => {
    const listing = (await run('a', ['ls', '-ln', '/run/secrets'])).stdout.toString();
    expect(listing).to.match(/^-r--r--r-- +1 +0 +0 +\d+ .* text$/m);
    expect(listing).to.match(/^-r--r--r-- +1 +0 +0 +256 .* bin\.dat$/m);
    expect(listing).to.match(/^-r-------- +1 +1000 +1000 +\d+ .* owned$/m);
  });

  it('lets only the granted uid read a 0400 file', async () => {
    const denied = await run('a', ['cat', '/run/secrets/owned'], ['--user', '1001']);
    expect(denied.code).to.not.equal(0);
    expect(denied.stderr).to.match(/Permission denied/);
    const granted = await run('a', ['cat', '/run/secrets/owned'], ['--user', '1000:1000']);
    expect(granted.code, granted.stderr).to.equal(0);
    expect(granted.stdout.toString()).to.equal(text);
    expect((await run('a', ['id', '-u'], ['--user', '1000'])).stdout.toString().trim()).to.equal('1000');
  });

  it('isolates services: each sees only its own files; a non-root uid cannot reach another container\'s mount', async () => {
    expect((await run('a', ['ls', '/run/secrets'])).stdout.toString().split('\n').filter(Boolean).sort()).to.deep.equal(['big', 'bin.dat', 'owned', 'text']);
    expect((await run('b', ['ls', '/run/secrets'])).stdout.toString().trim()).to.equal('other');
    expect((await run('empty', ['ls', '-A', '/run/secrets'])).stdout.toString()).to.equal('');

    const holder = startHush(['run', '--service', 'a', '--', 'sleep', '30'], env);
    try {
      await until(async () => (await containers()).length === 1, 'container of service a registered');
      const mountOfA = (await containers())[0]!.mount;
      const fromB = await run('b', ['cat', join(mountOfA, 'text')], ['--user', '1000']);
      expect(fromB.code).to.not.equal(0);
      expect(fromB.stderr).to.match(/Permission denied|No such file/);
      expect(fromB.stdout.toString()).to.not.contain(text.trim());
    } finally {
      holder.child.kill('SIGTERM');
      await holder.finished;
    }
  });

  /** Starts a container of `service` whose command (`sleep <marker>`) stays up; returns its host pid and mount. */
  const holdContainer = async (service: string, extra: string[] = []) => {
    const marker = String(50_000 + Math.floor(Math.random() * 1000));
    const holder = startHush(['run', '--service', service, ...extra, '--', 'sh', '-c', `echo ready; exec sleep ${marker}`], env);
    await until(() => holder.stdout().toString().includes('ready'), `the holder of ${service} to run`);
    const pid = Number(spawnSync('pgrep', ['-f', `^sleep ${marker}$`], { encoding: 'utf8' }).stdout.trim());
    const mount = (await containers()).find((c) => c.service === service)!.mount;
    const stop = async () => {
      holder.child.kill('SIGTERM');
      await holder.finished;
    };
    return { pid, mount, stop };
  };
  const lines = (r: { stdout: Buffer }) => r.stdout.toString().trim().split('\n');

  it('as root without --user: cannot reach another container\'s mount or /run/hush, nor unmount /run/secrets', async () => {
    // A file in /run/hush, the agent's default home (its sockets and mounts): the command must not see it.
    const existed = await stat('/run/hush').then(() => true, () => false);
    const probe = `/run/hush/run-test-${randomBytes(4).toString('hex')}`;
    await mkdir('/run/hush', { recursive: true, mode: 0o700 });
    await writeFile(probe, 'agent-private');
    const b = await holdContainer('b');
    try {
      const script = [
        `if cat ${join(b.mount, 'other')} 2>/dev/null; then echo; echo READ-OTHER; else echo other-refused; fi`,
        `if [ -n "$(ls -A ${mounts} 2>/dev/null)" ]; then echo LISTED-MOUNTS; else echo mounts-hidden; fi`,
        `if cat ${probe} 2>/dev/null; then echo; echo READ-RUN-HUSH; else echo run-hush-hidden; fi`,
        'if umount /run/secrets 2>/dev/null || umount -l /run/secrets 2>/dev/null; then echo UNMOUNTED; else echo umount-refused; fi',
        'cat /run/secrets/text',
      ].join('\n');
      const r = await run('a', ['sh', '-c', script]);
      expect(lines(r)).to.deep.equal(['other-refused', 'mounts-hidden', 'run-hush-hidden', 'umount-refused', text.trim()]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout.toString()).to.not.contain(other);
    } finally {
      await b.stop();
      await rm(probe, { force: true });
      if (!existed) await rmdir('/run/hush').catch(() => undefined); // only if nothing else put a file there meanwhile
    }
  });

  it('sees only its own PID namespace: no /proc/<pid>/root of another container with the same uid', async () => {
    const b = await holdContainer('b', ['--user', '1000']);
    try {
      expect(b.pid, 'the holder\'s host pid').to.be.greaterThan(1);
      const script = [
        `if cat /proc/${b.pid}/root/run/secrets/other 2>/dev/null; then echo; echo READ-OTHER; else echo other-refused; fi`,
        'cat /proc/1/comm',
        'ls /proc | grep -c "^[0-9][0-9]*$"',
      ].join('\n');
      const r = await run('a', ['sh', '-c', script], ['--user', '1000']);
      expect(r.code, r.stderr).to.equal(0);
      const [refused, init, count] = lines(r);
      expect(refused).to.equal('other-refused');
      expect(init, 'PID 1 is the namespace\'s init').to.equal('tini');
      // tini, sh, ls, grep (and the shell's own subshell at most): the host's processes are not there.
      expect(Number(count)).to.be.within(3, 6);
    } finally {
      await b.stop();
    }
  });

  it('has Docker\'s default capabilities and no_new_privs; --cap-add/--cap-drop change them as in docker run', async () => {
    const status = async (extra: string[]) => {
      const r = await run('a', ['grep', '-E', '^(CapEff|CapPrm|CapBnd|CapInh|CapAmb|NoNewPrivs):', '/proc/self/status'], extra);
      expect(r.code, r.stderr).to.equal(0);
      return Object.fromEntries(lines(r).map((l) => l.split(/:\s+/) as [string, string]));
    };
    expect(await status([])).to.deep.equal({ CapInh: '0000000000000000', CapPrm: '00000000a80425fb', CapEff: '00000000a80425fb', CapBnd: '00000000a80425fb', CapAmb: '0000000000000000', NoNewPrivs: '1' });
    expect(await status(['--user', '1000'])).to.include({ CapPrm: '0000000000000000', CapEff: '0000000000000000', CapBnd: '00000000a80425fb', NoNewPrivs: '1' });
    expect((await status(['--cap-add', 'net_admin', '--cap-drop', 'CAP_CHOWN'])).CapEff).to.equal('00000000a80435fa');
    expect((await status(['--cap-drop', 'ALL', '--cap-add', 'kill'])).CapEff).to.equal('0000000000000020');
    expect((await status(['--cap-drop', 'all'])).CapBnd).to.equal('0000000000000000');

    const bad = await run('a', ['true'], ['--cap-add', 'NOT_A_CAP']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/^error: .*unknown capability "NOT_A_CAP"/);
    expect(await containers(), 'a usage error registers nothing').to.deep.equal([]);
  });

  it('as root reads a uid=999 mode=0400 secret as in Docker (DAC_OVERRIDE); with --cap-drop ALL it cannot', async () => {
    const root = await run('c', ['cat', '/run/secrets/db']);
    expect(root.code, root.stderr).to.equal(0);
    expect(root.stdout.toString()).to.equal(text);
    const dropped = await run('c', ['cat', '/run/secrets/db'], ['--cap-drop', 'ALL']);
    expect(dropped.code).to.not.equal(0);
    expect(dropped.stderr).to.match(/Permission denied/);
    expect(dropped.stdout.toString()).to.equal('');
  });

  it('never passes HUSH_* on; --env-clear leaves only PATH, HOME, PWD and TERM', async () => {
    const withHush = { ...env, HUSH_JOIN_TOKEN: 'HUSH-1-deadbeef-notreal', HUSH_FOO: 'bar', KEEP_ME: 'kept', TERM: 'xterm-test' };
    const inherited = await runHush(['run', '--service', 'a', '--', 'env'], withHush);
    expect(inherited.code, inherited.stderr).to.equal(0);
    const names = lines(inherited).map((l) => l.split('=')[0]);
    expect(names.filter((n) => n!.startsWith('HUSH_'))).to.deep.equal([]);
    expect(lines(inherited)).to.include('KEEP_ME=kept');

    const cleared = await runHush(['run', '--service', 'a', '--env-clear', '--', 'env'], withHush);
    expect(cleared.code, cleared.stderr).to.equal(0);
    expect(lines(cleared).sort()).to.deep.equal([`HOME=/root`, `PATH=${process.env.PATH}`, `PWD=${process.cwd()}`, 'TERM=xterm-test']);
    const asUser = await runHush(['run', '--service', 'a', '--env-clear', '--user', '4321', '--', 'sh', '-c', 'echo "$HOME"'], withHush);
    expect(asUser.stdout.toString(), 'a uid without a passwd entry gets HOME=/').to.equal('/\n');
  });

  it('ends the command on Ctrl-C (SIGINT) and SIGTERM to hush run, through the namespace\'s init', async () => {
    for (const [signal, expected] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      const child = startHush(['run', '--service', 'a', '--', 'sh', '-c', 'echo ready; exec sleep 60'], env);
      await until(() => child.stdout().toString().includes('ready'), 'the command to run');
      child.child.kill(signal);
      expect((await child.finished).code, signal).to.equal(expected);
    }
    const trapped = startHush(['run', '--service', 'a', '--', 'sh', '-c', 'trap "echo interrupted; exit 3" INT; echo ready; while :; do sleep 0.05; done'], env);
    await until(() => trapped.stdout().toString().includes('ready'), 'the trapping command to run');
    trapped.child.kill('SIGINT');
    const done = await trapped.finished;
    expect(done.code).to.equal(3);
    expect(done.stdout.toString()).to.contain('interrupted');
    expect(await containers()).to.deep.equal([]);
  });

  it('reaps orphaned zombies: an orphan is re-parented to the namespace\'s init, which waits for it', async () => {
    const script = [
      // The intermediate shell exits at once, leaving its background child to PID 1.
      'orphan=$(sh -c "sleep 0.3 >/dev/null 2>&1 & echo \\$!")',
      'echo "parent $(cut -d" " -f4 /proc/$orphan/stat)"',
      'sleep 1',
      'if [ -e /proc/$orphan ]; then echo "state $(cut -d" " -f3 /proc/$orphan/stat)"; else echo reaped; fi',
    ].join('\n');
    const r = await run('a', ['sh', '-c', script]);
    expect(r.code, r.stderr).to.equal(0);
    expect(lines(r)).to.deep.equal(['parent 1', 'reaped']);
  });

  it('refuses every write-type operation inside the container', async () => {
    const script = [
      'echo x > /run/secrets/text',
      'touch /run/secrets/new',
      'mkdir /run/secrets/d',
      'rm -f /run/secrets/text',
      'mv /run/secrets/text /run/secrets/moved',
      'chmod 777 /run/secrets/text',
      'chown 1000 /run/secrets/text',
      'truncate -s 0 /run/secrets/text',
      'ln -s /etc/passwd /run/secrets/link',
    ]
      .map((op) => `if ${op} 2>/dev/null; then echo "ALLOWED: ${op}"; else echo refused; fi`)
      .join('\n');
    const result = await run('a', ['sh', '-c', script]);
    expect(result.stdout.toString().trim().split('\n')).to.deep.equal(Array(9).fill('refused'));
    expect((await run('a', ['cat', '/run/secrets/text'])).stdout.toString()).to.equal(text);
  });

  it('passes the exit code through and removes the mount when the command exits', async () => {
    expect((await run('a', ['sh', '-c', 'exit 7'])).code).to.equal(7);
    expect(await containers()).to.deep.equal([]);
    expect(await hushMountsUnder(mounts)).to.deep.equal([]);
    const refused = await run('nope', ['true']);
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.match(/^error: .*nope/);
  });

  for (const user of [[], ['--user', '1000']]) {
    it(`removes the mount when \`hush run ${user.join(' ')}\` is killed with -9 (the agent notices), and the command dies with it`, async () => {
      const marker = String(40_000 + Math.floor(Math.random() * 1000));
      const victim = startHush(['run', '--service', 'a', ...user, '--', 'sh', '-c', `echo started; exec sleep ${marker}`], env);
      await until(() => victim.stdout().toString().includes('started'), 'the command to run');
      victim.child.kill('SIGKILL');
      await until(async () => (await containers()).length === 0 && (await hushMountsUnder(mounts)).length === 0, 'agent to drop the container and its mount', 10_000);
      await until(() => spawnSync('pgrep', ['-f', `^sleep ${marker}$`]).status === 1, 'the command to die with hush run', 5_000);
    });
  }

  it('keeps an open handle on the version it opened while a new open reads the new version', async () => {
    // A secret and service of its own: the rotation must not change what other tests read.
    cli(['secret', 'create', 'big_rotating', join(dir, 'big')]);
    cli(['service', 'create', 'rotating_reader', '--secret', 'big_rotating']);
    const reader = [
      "const fs = require('fs'); const crypto = require('crypto');",
      "const fd = fs.openSync('/run/secrets/big_rotating', 'r'); const first = Buffer.alloc(4096); fs.readSync(fd, first, 0, 4096, 0);",
      "process.stdout.write('opened\\n');",
      "process.stdin.once('data', () => {",
      "  const rest = []; const buf = Buffer.alloc(65536); let pos = 4096, n;",
      '  while ((n = fs.readSync(fd, buf, 0, buf.length, pos)) > 0) { rest.push(Buffer.from(buf.subarray(0, n))); pos += n; }',
      "  const held = crypto.createHash('sha256').update(Buffer.concat([first, ...rest])).digest('hex');",
      "  const fresh = crypto.createHash('sha256').update(fs.readFileSync('/run/secrets/big_rotating')).digest('hex');",
      "  process.stdout.write(held + ' ' + fresh + '\\n'); process.exit(0); });",
    ].join('\n');
    const child = startHush(['run', '--service', 'rotating_reader', '--', process.execPath, '-e', reader], env);
    await until(() => child.stdout().toString().includes('opened'), 'reader to open the file');
    const v2 = randomBytes(500 * 1024);
    await writeFile(join(dir, 'big2'), v2);
    cli(['secret', 'rotate', 'big_rotating', join(dir, 'big2')]);
    await until(async () => (await call<{ secrets: { name: string; version: number }[] }>(agentSocket, 'GET', '/v1/debug/held')).body.secrets.some((s) => s.name === 'big_rotating' && s.version === 2), 'agent to hold version 2');
    await new Promise((r) => setTimeout(r, 150)); // past the 100 ms promise for new opens
    child.child.stdin!.write('go\n');
    const done = await child.finished;
    const [held, fresh] = done.stdout.toString().trim().split('\n').at(-1)!.split(' ');
    expect(held, 'the held handle reads the old version to the end').to.equal(sha256(big));
    expect(fresh, 'a new open reads the new version').to.equal(sha256(v2));
  });

  it('sends the reload signal to the command when one of its secrets rotates', async () => {
    const script = join(dir, 'reload.sh');
    // A secret and service of its own: the rotation must not change what other tests read.
    cli(['secret', 'create', 'reloaded_text', '-'], 'first-text');
    cli(['service', 'create', 'reloading', '--secret', 'reloaded_text']);
    await writeFile(script, '#!/bin/sh\ntrap \'echo reloaded; cat /run/secrets/reloaded_text; exit 0\' HUP\necho ready\nwhile :; do sleep 0.05; done\n');
    await chmod(script, 0o755);
    const child = startHush(['run', '--service', 'reloading', '--reload-signal', 'SIGHUP', '--', script], env);
    await until(() => child.stdout().toString().includes('ready'), 'script to start');
    cli(['secret', 'rotate', 'reloaded_text', '-'], 'rotated-text');
    const done = await child.finished;
    expect(done.code, done.stderr).to.equal(0);
    expect(done.stdout.toString()).to.match(/reloaded\nrotated-text$/);
  });

  it('stops cleanly on SIGTERM with every mount removed', async () => {
    // Wait for the command itself to run: before its bind mount is made, stopping the agent
    // would make `hush run` fail to set up instead (a different test).
    const holder = startHush(['run', '--service', 'b', '--', 'sh', '-c', 'test -f /run/secrets/other && echo ready && exec sleep 30'], env);
    await until(() => holder.stdout().toString().includes('ready'), 'the command to run with its secrets');
    expect(await hushMountsUnder(mounts)).to.have.length(1);
    up.child.kill('SIGTERM');
    const [code] = (await once(up.child, 'exit')) as [number | null];
    expect(code).to.equal(0);
    expect(await hushMountsUnder(mounts)).to.deep.equal([]);
    holder.child.kill('SIGTERM'); // forwarded to sleep
    expect((await holder.finished).code).to.equal(128 + 15);
  });

  it('reuses its data when started again', async () => {
    const secretNames = () => (JSON.parse(cli(['secret', 'ls', '--format', 'json'])) as { name: string }[]).map((s) => s.name).sort();
    const before = secretNames();
    expect(before).to.include.members(['big', 'binary', 'other', 'text']);
    up.child.kill('SIGTERM');
    await up.finished;
    await startUp();
    expect(secretNames()).to.deep.equal(before);
    const nodes = JSON.parse(cli(['node', 'ls', '--format', 'json'])) as { name: string; labels: Record<string, string>; status: { state: string } }[];
    expect(nodes.map((n) => n.status.state), 'the previous run\'s node is retired, not left down').to.deep.equal(['ready']);
    // It rejoined with its name's own token, so the name kept the admin's labels.
    expect(nodes.map((n) => [n.name, n.labels])).to.deep.equal([[hostname(), { zone: 'eu' }]]);
    expect((await run('b', ['cat', '/run/secrets/other'])).stdout.toString()).to.equal(other);
    expect((await run('placed', ['cat', '/run/secrets/other'])).stdout.toString()).to.equal(other);
  });

  it('exits 125 with a clear message, and unregisters, when the secrets cannot be bound at /run/secrets', async () => {
    // A stand-in runtime API that hands out a mount that does not exist: the one
    // way to make the bind fail deterministically (with the real agent it is a
    // race against the agent stopping).
    const requests: string[] = [];
    const socket = join(dir, 'fake-agent.sock');
    const server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      req.resume();
      if (req.method === 'POST') {
        res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'x', service: 'a', mount: join(dir, 'no-such-mount') }));
      } else res.writeHead(204).end();
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      const r = await run('a', ['echo', 'must not run'], ['--agent-socket', socket]);
      expect(r.code, r.stderr).to.equal(125);
      expect(r.stderr).to.match(/could not bind the container's secrets at \/run\/secrets/);
      expect(r.stdout.toString()).to.equal('');
      expect(requests).to.have.length(2);
      expect(requests[0]).to.equal('POST /v1/containers');
      expect(requests[1]).to.match(/^DELETE \/v1\/containers\/run-[0-9a-f]+$/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
