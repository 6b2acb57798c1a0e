/**
 * Real Docker containers read their secrets from hush: `hush up` serves the
 * volume plugin (a unique name per run), a private dockerd (test/helpers/
 * dockerd.ts) runs busybox containers with
 * `--mount type=volume,volume-driver=NAME,source=SERVICE,target=/run/secrets,readonly`.
 * Needs dockerd (scripts/setup-test installs it); fails, never skips, when it
 * cannot start.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { call, closeClients } from '../helpers/http.js';
import { hushOk, startHush, type Running } from '../helpers/hush-process.js';
import { dockerdLogTail, startDockerd, stopDockerSuite, TEST_IMAGE, type Dockerd } from '../helpers/dockerd.js';
import { hushMountsUnder } from '../helpers/mounts.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

interface ContainerView {
  id: string;
  service: string;
  mount: string;
  runtime?: { runtime: string; id: string; name: string };
}

describe('Docker volume plugin (integration, real dockerd + FUSE)', function () {
  this.timeout(180_000);
  let dockerd: Dockerd | undefined;
  let dir: string;
  let mounts: string;
  let agentSocket: string;
  let up: Running | undefined;
  let env: Record<string, string>;
  const plugin = `hush-test-${randomBytes(4).toString('hex')}`;
  const text = `text-${randomBytes(8).toString('hex')}\n`;
  const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const other = `other-${randomBytes(8).toString('hex')}`;

  const cli = (args: string[], input?: string | Buffer) => hushOk(args, { env, input }).stdout;
  const volume = (service: string) => ['--mount', `type=volume,volume-driver=${plugin},source=${service},target=/run/secrets,readonly`];
  /** `docker run --rm --network none` of the test image with SERVICE's hush volume. */
  const run = (service: string, command: string[], extra: string[] = []) => dockerd!.docker(['run', '--rm', '--network', 'none', ...volume(service), ...extra, TEST_IMAGE, ...command]);
  const containers = async () => (await call<ContainerView[]>(agentSocket, 'GET', '/v1/containers')).body;
  const held = async () => (await call<{ secrets: { name: string; version: number }[] }>(agentSocket, 'GET', '/v1/debug/held')).body.secrets.map((s) => s.name);

  const startUp = async () => {
    up = startHush(
      ['up', '--home', dir, '--socket', join(dir, 'admin.sock'), '--agent-socket', agentSocket, '--mounts', mounts, '--listen', '127.0.0.1:0', '--admin', '', '--docker-plugin', plugin, '--docker-host', dockerd!.host],
      env,
    );
    await until(() => up!.stdout().toString().includes('hush is up'), 'hush up to print its quickstart', 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${up!.stderr()}`);
    });
  };
  const upIsRunning = () => up !== undefined && up.child.exitCode === null && up.child.signalCode === null;

  before(async () => {
    dockerd = await startDockerd();
    dir = await tempDir('hush-docker-');
    mounts = join(dir, 'mounts');
    agentSocket = join(dir, 'agent.sock');
    // DOCKER_HOST points elsewhere on purpose: the agent must use --docker-host, never DOCKER_HOST.
    env = { HUSH_HOME: dir, HUSH_HOST: '', HUSH_AGENT_SOCKET: '', HUSH_AGENT_DEBUG: '1', DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
    await startUp();
    await writeFile(join(dir, 'binary'), binary);
    cli(['secret', 'create', 'text', '-'], text);
    cli(['secret', 'create', 'binary', join(dir, 'binary')]);
    cli(['secret', 'create', 'other', '-'], other);
    cli(['secret', 'create', 'rotating', '-'], 'A'.repeat(64));
    cli(['service', 'create', 'web', '--secret', 'text,target=password,uid=1000,gid=1000,mode=0400', '--secret', 'binary,target=bin.dat']);
    cli(['service', 'create', 'worker', '--secret', 'other']);
    cli(['service', 'create', 'mars', '--secret', 'other', '--constraint', 'node.labels.planet==mars']);
    cli(['service', 'create', 'rotor', '--secret', 'rotating,target=value']);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      console.error(`hush up output:\n${up?.stderr().slice(-4000)}`);
      if (dockerd) console.error(`dockerd log:\n${await dockerdLogTail(dockerd)}`);
    }
    // Containers of one test do not leak into the next.
    if (dockerd) {
      const ids = dockerd.docker(['ps', '-aq']).stdout.split('\n').filter(Boolean);
      if (ids.length > 0) dockerd.docker(['rm', '-f', ...ids]);
    }
    if (!upIsRunning()) await startUp();
  });

  after(async () => {
    closeClients();
    await stopDockerSuite({ up, dockerd, plugin, dir });
  });

  it('serves the plugin socket: Activate says VolumeDriver, scope local', async () => {
    const activate = await call<{ Implements: string[] }>(`/run/docker/plugins/${plugin}.sock`, 'POST', '/Plugin.Activate');
    expect(activate.body.Implements).to.deep.equal(['VolumeDriver']);
    const caps = await call<{ Capabilities: { Scope: string } }>(`/run/docker/plugins/${plugin}.sock`, 'POST', '/VolumeDriver.Capabilities');
    expect(caps.body.Capabilities.Scope).to.equal('local');
  });

  it('answers bad plugin calls with Err and changes nothing', async () => {
    const sock = `/run/docker/plugins/${plugin}.sock`;
    // Docker sends no content-type: the raw body must be read as JSON all the same.
    const post = async (path: string, body: string) => (await call<{ Err?: string }>(sock, 'POST', path, undefined, body)).body;
    expect((await post('/VolumeDriver.Create', '{"Name":"web","Opts":{"size":"1g"}}')).Err).to.match(/hush volumes take no options \(got size\)/);
    expect((await post('/VolumeDriver.Create', '{"Name":"web","Opts":{}}')).Err).to.equal('');
    expect((await post('/VolumeDriver.Get', '{"Name":"../etc"}')).Err).to.match(/not a hush service name/);
    expect((await post('/VolumeDriver.Mount', '{"Name":"web","ID":"../../x"}')).Err).to.match(/mount ID/);
    expect((await post('/VolumeDriver.Mount', 'not json')).Err).to.match(/not JSON/);
    // An ID this agent never mounted (one made before a restart): Docker must still be able to stop its container.
    expect((await post('/VolumeDriver.Unmount', `{"Name":"web","ID":"${'ab'.repeat(32)}"}`)).Err).to.equal('');
    const unknown = await call<{ Err: string }>(sock, 'POST', '/VolumeDriver.Frobnicate', undefined, '{}');
    expect(unknown.status).to.equal(404);
    expect(unknown.body.Err).to.match(/not part of the volume plugin protocol/);
    expect(await containers()).to.deep.equal([]);
  });

  it('many mounts at once (docker compose up starts services in parallel): every one is registered', async () => {
    const sock = `/run/docker/plugins/${plugin}.sock`;
    const ids = Array.from({ length: 12 }, () => randomBytes(32).toString('hex'));
    const mounted = await Promise.all(ids.map((id) => call<{ Mountpoint?: string; Err: string }>(sock, 'POST', '/VolumeDriver.Mount', undefined, JSON.stringify({ Name: 'worker', ID: id }))));
    expect(mounted.map((m) => m.body.Err)).to.deep.equal(ids.map(() => ''));
    expect(new Set(mounted.map((m) => m.body.Mountpoint)).size).to.equal(ids.length);
    expect((await containers()).length).to.equal(ids.length);
    await Promise.all(ids.map((id) => call(sock, 'POST', '/VolumeDriver.Unmount', undefined, JSON.stringify({ Name: 'worker', ID: id }))));
    expect(await containers()).to.deep.equal([]);
    expect(await hushMountsUnder(mounts)).to.deep.equal([]);
  });

  it('docker run reads the exact bytes with the granted owner and mode; another uid is refused; writes fail', async () => {
    const listing = run('web', ['stat', '-c', '%n %u %g %a', '/run/secrets/password', '/run/secrets/bin.dat']);
    expect(listing.status, listing.stderr).to.equal(0);
    expect(listing.stdout.trim().split('\n')).to.deep.equal(['/run/secrets/password 1000 1000 400', '/run/secrets/bin.dat 0 0 444']);

    const owner = run('web', ['cat', '/run/secrets/password'], ['--user', '1000:1000']);
    expect(owner.status, owner.stderr).to.equal(0);
    expect(owner.stdout).to.equal(text);
    // Binary bytes survive: hexdump inside the container, compared here.
    const bin = run('web', ['od', '-An', '-v', '-tx1', '/run/secrets/bin.dat']);
    expect(bin.stdout.replace(/\s+/g, '')).to.equal(binary.toString('hex'));

    const stranger = run('web', ['cat', '/run/secrets/password'], ['--user', '1001:1001']);
    expect(stranger.status).to.not.equal(0);
    expect(stranger.stderr).to.match(/Permission denied/);

    const write = run('web', ['sh', '-c', 'echo x > /run/secrets/new; echo y > /run/secrets/bin.dat']);
    expect(write.status).to.not.equal(0);
    expect(write.stderr).to.match(/Read-only file system/);
  });

  it('two services, two containers: each sees only its own files', async () => {
    for (const service of ['web', 'worker']) {
      expect(dockerd!.docker(['run', '-d', '--name', service, '--network', 'none', ...volume(service), TEST_IMAGE, 'sleep', '300']).status).to.equal(0);
    }
    const ls = (name: string) => dockerd!.docker(['exec', name, 'ls', '/run/secrets']).stdout.split('\n').filter(Boolean).sort();
    expect(ls('web')).to.deep.equal(['bin.dat', 'password']);
    expect(ls('worker')).to.deep.equal(['other']);
    expect(dockerd!.docker(['exec', 'worker', 'cat', '/run/secrets/other']).stdout).to.equal(other);

    // The agent learned from dockerd which container each mount is for: through --docker-host, since its DOCKER_HOST points nowhere.
    await until(async () => (await containers()).every((c) => c.runtime !== undefined) && (await containers()).length === 2, 'both containers identified through dockerd');
    const byName = new Map((await containers()).map((c) => [c.runtime!.name, c]));
    for (const name of ['web', 'worker']) {
      const id = dockerd!.docker(['inspect', '--format', '{{.Id}}', name]).stdout.trim();
      expect(byName.get(name)?.runtime).to.deep.equal({ runtime: 'docker', id, name });
      expect(byName.get(name)?.service).to.equal(name);
    }
    // The store hears it too: `hush node inspect` names each container by its Docker id and name, beside the mount ID it was registered with.
    const dockerIds = new Map(['web', 'worker'].map((name) => [name, dockerd!.docker(['inspect', '--format', '{{.Id}}', name]).stdout.trim()]));
    const onNode = async () => (JSON.parse(cli(['node', 'inspect', (JSON.parse(cli(['node', 'ls', '--format', 'json'])) as { id: string }[])[0]!.id])) as { containers: { id: string; service: string; runtime?: object }[] }[])[0]!.containers;
    await until(async () => (await onNode()).every((c) => c.runtime !== undefined), 'the store to record both containers\' Docker identity');
    for (const c of await onNode()) {
      expect(c.runtime, c.id).to.deep.equal({ runtime: 'docker', id: dockerIds.get(c.service), name: c.service });
      expect(c.id).to.equal(byName.get(c.service)!.id);
    }
    // And who read what names them the same way: worker read `other` above.
    const readers = async () => (JSON.parse(cli(['audit', '--reads', '--secret', 'other', '--format', 'json'])) as { runtime?: { name: string; id: string } }[]).map((r) => r.runtime);
    await until(async () => (await readers()).some((r) => r?.name === 'worker'), 'the read of other by the worker container in hush audit --reads');
    expect((await readers()).find((r) => r?.name === 'worker')?.id).to.equal(dockerIds.get('worker'));
  });

  it('a refused container: docker run fails with the store\'s reason (constraint, unknown service)', async () => {
    const placed = run('mars', ['cat', '/run/secrets/other']);
    expect(placed.status).to.not.equal(0);
    expect(placed.stderr).to.match(/node\.labels\.planet/);
    expect(placed.stdout).to.not.include(other);

    const unknown = run('no-such-service', ['ls', '/run/secrets']);
    expect(unknown.status).to.not.equal(0);
    expect(unknown.stderr).to.match(/unknown service "no-such-service"/);
    expect(await containers()).to.deep.equal([]);
  });

  it('live rotation: a reading loop sees the new value, never a torn or failed read, and the reload signal arrives', async () => {
    const loop = 'trap "echo RELOAD" HUP; while true; do v=$(cat /run/secrets/value) || v=FAILED; echo "$v"; done';
    const started = dockerd!.docker(['run', '-d', '--name', 'rotor', '--network', 'none', '--label', 'hush.reload-signal=SIGHUP', ...volume('rotor'), TEST_IMAGE, 'sh', '-c', loop]);
    expect(started.status, started.stderr).to.equal(0);
    const logs = () => dockerd!.docker(['logs', 'rotor']).stdout;
    await until(() => logs().includes('A'.repeat(64)), 'the loop to read the first value');
    await until(async () => (await containers()).some((c) => c.runtime?.name === 'rotor'), 'the container identified (its label read)');

    cli(['secret', 'rotate', 'rotating', '-'], 'B'.repeat(64));
    await until(() => logs().includes('B'.repeat(64)), 'the loop to read the new value');
    await until(() => logs().includes('RELOAD'), 'the reload signal to reach the container');
    const lines = logs().split('\n').filter(Boolean);
    const unexpected = lines.filter((l) => l !== 'A'.repeat(64) && l !== 'B'.repeat(64) && l !== 'RELOAD');
    expect(unexpected, 'torn or failed reads').to.deep.equal([]);
    // After the first new value, never the old one again.
    const firstNew = lines.indexOf('B'.repeat(64));
    expect(lines.slice(firstNew).includes('A'.repeat(64))).to.equal(false);
  });

  it('container exit (--rm) and docker rm -f: the mount goes and the node drops the values', async () => {
    const once = run('worker', ['cat', '/run/secrets/other']);
    expect(once.stdout).to.equal(other);
    await until(async () => (await containers()).length === 0, 'the exited container unregistered');
    expect(await hushMountsUnder(mounts)).to.deep.equal([]);
    await until(async () => !(await held()).includes('other'), 'the node to drop the value no container needs');

    expect(dockerd!.docker(['run', '-d', '--name', 'killed', '--network', 'none', ...volume('worker'), TEST_IMAGE, 'sleep', '300']).status).to.equal(0);
    await until(async () => (await containers()).length === 1, 'the container registered');
    expect(await held()).to.include('other');
    expect(await hushMountsUnder(mounts)).to.have.length(1);
    expect(dockerd!.docker(['rm', '-f', 'killed']).status).to.equal(0);
    await until(async () => (await containers()).length === 0, 'the removed container unregistered');
    expect(await hushMountsUnder(mounts)).to.deep.equal([]);
    await until(async () => !(await held()).includes('other'), 'the node to drop the value after docker rm -f');
  });

  it('agent restart: a running container\'s reads fail (never stale), docker restart brings them back', async () => {
    expect(dockerd!.docker(['run', '-d', '--name', 'survivor', '--network', 'none', ...volume('worker'), TEST_IMAGE, 'sleep', '300']).status).to.equal(0);
    expect(dockerd!.docker(['exec', 'survivor', 'cat', '/run/secrets/other']).stdout).to.equal(other);

    up!.child.kill('SIGKILL');
    await up!.finished;
    // The kernel may still hold the name for its entry timeout (1 s): then the next open asks the dead agent and fails.
    let dead = { status: 0 as number | null, stdout: '', stderr: '' };
    await until(() => (dead = dockerd!.docker(['exec', 'survivor', 'cat', '/run/secrets/other'])).status !== 0, 'reads to fail once the agent is gone', 5_000);
    expect(dead.status).to.not.equal(0);
    expect(dead.stdout).to.equal('');
    expect(dead.stderr).to.match(/Transport endpoint is not connected|Socket not connected|No such device/);

    await startUp();
    // Still failing after the restart: the old mount died with the old agent.
    expect(dockerd!.docker(['exec', 'survivor', 'cat', '/run/secrets/other']).status).to.not.equal(0);
    const restarted = dockerd!.docker(['restart', '-t', '1', 'survivor']);
    expect(restarted.status, restarted.stderr).to.equal(0);
    expect(dockerd!.docker(['exec', 'survivor', 'cat', '/run/secrets/other']).stdout).to.equal(other);
  });

  it('dockerd restarted under the plugin: a --restart always container reads again, a new docker run is served, nothing stale is left', async () => {
    // --stop-timeout 1: sleep as PID 1 ignores the SIGTERM dockerd sends at shutdown.
    const started = dockerd!.docker(['run', '-d', '--name', 'keeper', '--restart', 'always', '--stop-timeout', '1', '--network', 'none', ...volume('worker'), TEST_IMAGE, 'sleep', '300']);
    expect(started.status, started.stderr).to.equal(0);
    expect(dockerd!.docker(['exec', 'keeper', 'cat', '/run/secrets/other']).stdout).to.equal(other);
    const before = (await containers()).map((c) => c.id);
    expect(before).to.have.length(1);

    await dockerd!.restart();
    expect(upIsRunning(), 'the agent outlives its dockerd').to.equal(true);
    // dockerd starts the container again, mounting the volume through the plugin anew.
    let read = { status: 1 as number | null, stdout: '', stderr: '' };
    await until(() => (read = dockerd!.docker(['exec', 'keeper', 'cat', '/run/secrets/other'])).status === 0, 'the restarted container to read its secret', 60_000, 200);
    expect(read.stdout).to.equal(other);
    const fresh = run('web', ['cat', '/run/secrets/password']);
    expect(fresh.status, fresh.stderr).to.equal(0);
    expect(fresh.stdout).to.equal(text);

    // The mount of the container's first life was unmounted at the daemon's stop: one registration, one mount.
    await until(async () => (await containers()).length === 1, 'one container registered', 20_000);
    const after = await containers();
    expect(after[0]!.service).to.equal('worker');
    expect(after[0]!.id, 'a new mount for the container\'s new life').to.not.equal(before[0]);
    expect(await hushMountsUnder(mounts)).to.deep.equal([after[0]!.mount]);
    await until(async () => (await containers())[0]?.runtime?.name === 'keeper', 'the agent to name the container from the restarted daemon', 20_000, 200);
  });
});
