/**
 * A private Docker daemon for one test file: its own socket, data root and
 * exec root under a temporary folder, with flags that leave the host alone
 * (no iptables rules, no docker0 bridge, no ip_forward change, no
 * /etc/docker/key.json), and a small image built from the static busybox
 * with `docker import` (no registry is reachable). Containers must run with
 * `--network none` (there is no bridge). `stop()` removes everything, by pid,
 * whatever state the tests left: containers, the daemon and its containerd,
 * mounts under its folder, the folder, and empty Docker cgroup folders.
 *
 * If dockerd cannot start, `startDockerd` throws with its log: the Docker
 * tests fail with that message, they are never skipped.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, unlink, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Running } from './hush-process.js';
import { readMounts } from './mounts.js';
import { removeDir } from './tmp.js';
import { until } from './until.js';

export const TEST_IMAGE = 'hush-test-busybox';

export interface Dockerd {
  dir: string;
  /** unix:///…/docker.sock: for DOCKER_HOST of docker/docker-compose, and hush's --docker-host. */
  host: string;
  /** Runs the docker CLI against this daemon. */
  docker(args: string[], opts?: { input?: string; timeoutMs?: number }): { status: number | null; stdout: string; stderr: string };
  /** Environment for child processes that talk to this daemon (docker, docker-compose). */
  env: Record<string, string>;
  /** Stops the daemon (SIGTERM: it stops its containers) and starts it again on the same folders. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** dockerd on the folder's socket, data root and exec root; its log appended to dockerd.log. */
function spawnDaemon(dir: string, host: string): ChildProcess {
  const logFd = openSync(join(dir, 'dockerd.log'), 'a');
  const child = spawn(
    'dockerd',
    [
      '--host', host,
      '--data-root', join(dir, 'root'),
      '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'dockerd.pid'),
      '--config-file', join(dir, 'daemon.json'),
      '--iptables=false', '--ip-forward=false', '--bridge=none', '--storage-driver=overlay2',
    ],
    // Its own process group: a SIGKILL at the end takes its containerd with it.
    { detached: true, stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  return child;
}

function dockerdLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'dockerd.log'), 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function startDockerd(): Promise<Dockerd> {
  if (spawnSync('dockerd', ['--version']).status !== 0) {
    throw new Error('dockerd is not installed: run scripts/setup-test (it installs Debian\'s docker.io, busybox-static and docker-compose); the Docker tests need a real daemon');
  }
  // Short: containerd's socket path under the exec root must fit in a sockaddr_un (108 bytes).
  const dir = await mkdtemp('/tmp/hush-dockerd-');
  const host = `unix://${dir}/docker.sock`;
  await writeFile(join(dir, 'daemon.json'), JSON.stringify({ 'deprecated-key-path': join(dir, 'key.json') }));
  let child = spawnDaemon(dir, host);
  const env = { DOCKER_HOST: host, DOCKER_TLS_VERIFY: '', DOCKER_CERT_PATH: '', DOCKER_CONTEXT: '' };
  const docker: Dockerd['docker'] = (args, opts = {}) => {
    const r = spawnSync('docker', args, { env: { ...process.env, ...env }, input: opts.input ?? '', encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const answering = () =>
    until(() => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`dockerd exited (${child.exitCode ?? child.signalCode})`);
      return docker(['version', '--format', '{{.Server.APIVersion}}']).status === 0;
    }, 'the private dockerd to answer', 30_000, 100);
  const restart = async () => {
    child.kill('SIGTERM');
    await until(() => child.exitCode !== null || child.signalCode !== null, 'dockerd to stop for its restart', 30_000, 100);
    try {
      process.kill(-child.pid!, 'SIGKILL'); // a containerd that outlived its dockerd would hold the new one's socket
    } catch {
      // none left
    }
    child = spawnDaemon(dir, host);
    await answering();
  };
  const daemon: Dockerd = { dir, host, docker, env, restart, stop: () => stopDockerd(dir, child, docker) };
  try {
    await answering();
    await buildBusyboxImage(dir, docker);
  } catch (err) {
    await daemon.stop().catch(() => undefined);
    throw new Error(`the Docker tests need a private dockerd, and it could not start: ${(err as Error).message}\ndockerd log:\n${dockerdLog(dir)}`, { cause: err });
  }
  return daemon;
}

/** /bin/busybox with one link per applet, an /etc/passwd, imported as TEST_IMAGE. */
async function buildBusyboxImage(dir: string, docker: Dockerd['docker']): Promise<void> {
  const rootfs = join(dir, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await mkdir(join(rootfs, 'etc'));
  await mkdir(join(rootfs, 'tmp'), { mode: 0o1777 });
  await copyFile('/bin/busybox', join(rootfs, 'bin/busybox'));
  const applets = spawnSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter((a) => a && a !== 'busybox');
  for (const applet of applets) await symlink('busybox', join(rootfs, 'bin', applet));
  await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n');
  await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  const tar = spawnSync('tar', ['-C', rootfs, '-c', '.'], { maxBuffer: 64 * 1024 * 1024 });
  if (tar.status !== 0) throw new Error(`tar of the busybox rootfs failed: ${tar.stderr.toString()}`);
  const imported = spawnSync('docker', ['import', '-c', 'ENV PATH=/bin', '-c', 'CMD ["/bin/sh"]', '-', TEST_IMAGE], {
    input: tar.stdout,
    env: { ...process.env, DOCKER_HOST: `unix://${dir}/docker.sock`, DOCKER_CONTEXT: '' },
    encoding: 'utf8',
  });
  if (imported.status !== 0) throw new Error(`docker import of the busybox image failed: ${imported.stderr}`);
  await rm(rootfs, { recursive: true, force: true });
  // Sanity: the image runs.
  const hello = docker(['run', '--rm', '--network', 'none', TEST_IMAGE, 'echo', 'ok']);
  if (hello.stdout.trim() !== 'ok') throw new Error(`the busybox image does not run: ${hello.stderr}`);
}

async function stopDockerd(dir: string, child: ChildProcess, docker: Dockerd['docker']): Promise<void> {
  const running = () => child.exitCode === null && child.signalCode === null;
  if (running()) {
    const ids = docker(['ps', '-aq'], { timeoutMs: 20_000 }).stdout.split('\n').filter(Boolean);
    if (ids.length > 0) docker(['rm', '-f', ...ids], { timeoutMs: 30_000 });
    child.kill('SIGTERM');
    await until(() => !running(), 'dockerd to stop', 20_000, 100).catch(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    });
  }
  // containerd and shims of this daemon, if any outlived it (its process group).
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // none left
  }
  const runcRoot = join(dir, 'exec/runtime-runc/moby');
  if (existsSync(runcRoot)) {
    for (const id of readdirSync(runcRoot)) spawnSync('runc', ['--root', runcRoot, 'delete', '--force', id]);
  }
  // Deepest first: overlay mounts, the data root's own binds, netns files.
  const under = (await readMounts()).map((m) => m.mountpoint).filter((m) => m === dir || m.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
  for (const m of under) spawnSync('umount', ['-l', m]);
  await rm(dir, { recursive: true, force: true });
  for (const controller of safeReaddir('/sys/fs/cgroup')) {
    const folder = join('/sys/fs/cgroup', controller, 'docker');
    // Only when empty: another daemon on the machine may use it.
    if (existsSync(folder) && safeReaddir(folder).every((f) => !isDirectory(join(folder, f)))) {
      try {
        rmdirSync(folder);
      } catch {
        // in use
      }
    }
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function isDirectory(path: string): boolean {
  try {
    return readdirSync(path) !== undefined;
  } catch {
    return false;
  }
}

/** The private daemon's log tail, for a failed test's output. */
export async function dockerdLogTail(d: Dockerd): Promise<string> {
  return (await readFile(join(d.dir, 'dockerd.log'), 'utf8').catch(() => '')).split('\n').slice(-20).join('\n');
}

/**
 * The end of a suite that runs `hush up` with a Docker plugin against its own
 * dockerd: hush up stops first (its mounts go), then the daemon, then what is
 * left of the plugin socket and the suite's folder, even when a step fails.
 */
export async function stopDockerSuite(suite: { up?: Running; dockerd?: Dockerd; plugin: string; dir?: string }): Promise<void> {
  try {
    if (suite.up && suite.up.child.exitCode === null) suite.up.child.kill('SIGTERM');
    await suite.up?.finished;
  } finally {
    await suite.dockerd?.stop();
    await unlink(`/run/docker/plugins/${suite.plugin}.sock`).catch(() => undefined);
    if (suite.dir) await removeDir(suite.dir);
  }
}
