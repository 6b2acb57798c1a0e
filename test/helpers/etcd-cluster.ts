/**
 * A real etcd cluster for tests: N members on loopback ports, each with a
 * private data directory, started with Debian's `etcd` (etcd-server 3.4;
 * scripts/setup installs it). A test that needs etcd fails when it is
 * missing, it does not skip. Members are stopped by pid (`stop` and the
 * exit hook), so a failing test leaves none running; a member can be killed
 * (-9) and started again on the same ports and data directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { freePort } from './agent-process.js';
import { removeDir, tempDir } from './tmp.js';
import { until } from './until.js';

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  child?: ChildProcess;
  output: string;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** Client URLs of every member. */
  endpoints: string[];
  /** The parent of the members' data directories. */
  dir: string;
  kill(index: number): Promise<void>;
  start(index: number): Promise<void>;
  stop(): Promise<void>;
}

/** Every etcd member any test started, killed on exit even if a test forgot it. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
});

export function assertEtcdInstalled(): void {
  const found = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  if (found.status !== 0) throw new Error('etcd is not installed: run scripts/setup (it installs Debian\'s etcd-server), or `apt-get install -y etcd-server`');
}

export async function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  assertEtcdInstalled();
  const dir = await tempDir('hush-etcd-');
  const members: EtcdMember[] = [];
  for (let i = 0; i < size; i++) {
    members.push({ name: `m${i}`, clientUrl: `http://127.0.0.1:${await freePort()}`, peerUrl: `http://127.0.0.1:${await freePort()}`, dataDir: join(dir, `m${i}`), output: '' });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const launch = (member: EtcdMember) => {
    const child = spawn(
      'etcd',
      [
        '--name', member.name,
        '--data-dir', member.dataDir,
        '--listen-client-urls', member.clientUrl,
        '--advertise-client-urls', member.clientUrl,
        '--listen-peer-urls', member.peerUrl,
        '--initial-advertise-peer-urls', member.peerUrl,
        '--initial-cluster', initialCluster,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', `hush-test-${process.pid}`,
        // Quick elections on loopback, so a killed leader is replaced in well under a second.
        '--heartbeat-interval', '50',
        '--election-timeout', '500',
        '--logger', 'zap',
        '--log-level', 'warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    running.add(child);
    child.once('exit', () => running.delete(child));
    const keep = (chunk: Buffer) => (member.output = (member.output + chunk.toString()).slice(-8192));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    member.child = child;
  };
  const healthy = async (member: EtcdMember) => {
    const res = await fetch(`${member.clientUrl}/health`).catch(() => undefined);
    return res?.ok === true && ((await res.json()) as { health?: string }).health === 'true';
  };
  const waitHealthy = (member: EtcdMember) =>
    until(async () => {
      if (member.child?.exitCode !== null && member.child?.exitCode !== undefined) throw new Error(`etcd member ${member.name} exited:\n${member.output}`);
      return healthy(member);
    }, `etcd member ${member.name} healthy`, 30_000, 50);

  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.clientUrl),
    dir,
    async kill(index) {
      const child = members[index]!.child;
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }
    },
    async start(index) {
      launch(members[index]!);
      // A lone member cannot be healthy (no quorum): wait only for its port.
      await until(async () => (await fetch(`${members[index]!.clientUrl}/version`).catch(() => undefined))?.ok === true, `etcd member ${members[index]!.name} listening`, 30_000, 50);
    },
    async stop() {
      for (let i = 0; i < members.length; i++) await cluster.kill(i);
      await removeDir(dir);
    },
  };
  try {
    for (const member of members) launch(member);
    for (const member of members) await waitHealthy(member);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
