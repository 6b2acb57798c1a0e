/**
 * A throwaway single-node etcd on 127.0.0.1 with default durability (an
 * fsync per raft batch), as the baseline the HA backend will run on.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort, startChild, waitReady, type Child } from './proc.js';

const run = promisify(execFile);

async function onPath(command: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${command}`]);
    return true;
  } catch {
    return false;
  }
}

/** Installs Debian's etcd-server when etcd is missing (root only: the bench will not sudo). */
export async function ensureEtcd(progress: (line: string) => void): Promise<void> {
  if (await onPath('etcd')) return;
  if (process.getuid?.() !== 0) throw new Error('etcd is not installed; run `sudo apt-get install -y etcd-server` and try again');
  progress('installing etcd-server with apt-get (once; takes a minute)…');
  const started = Date.now();
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    await run('apt-get', ['update', '-qq'], { env, maxBuffer: 16 << 20 });
    await run('apt-get', ['install', '-y', '-qq', 'etcd-server'], { env, maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`installing etcd-server failed: ${e.stderr?.trim().split('\n').slice(-3).join(' ') || e.message}`, { cause: err });
  }
  if (!(await onPath('etcd'))) throw new Error('apt-get installed etcd-server but no etcd is on PATH');
  progress(`installed etcd-server in ${Math.round((Date.now() - started) / 1000)} s`);
}

export interface RunningEtcd {
  endpoint: string;
  child: Child;
}

export async function startEtcd(dataDir: string): Promise<RunningEtcd> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child = startChild('etcd', [
    '--name', 'bench',
    '--data-dir', dataDir,
    '--listen-client-urls', endpoint,
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `bench=${peer}`,
    '--initial-cluster-state', 'new',
    '--logger', 'zap',
    '--log-level', 'warn',
  ]);
  try {
    await waitReady(child, 'etcd', async () => {
      const res = await fetch(`${endpoint}/health`);
      return res.ok && ((await res.json()) as { health?: string }).health === 'true';
    });
  } catch (err) {
    await child.stop();
    throw err;
  }
  return { endpoint, child };
}

export interface RunningEtcdCluster {
  endpoints: string[];
  stop(): Promise<void>;
}

/**
 * A throwaway etcd cluster of `size` members on 127.0.0.1, each with its own
 * data directory under `dir` (all on the same disk), default durability and
 * default timings: the HA deployment on one machine.
 */
export async function startEtcdCluster(dir: string, size: number): Promise<RunningEtcdCluster> {
  const members: { name: string; client: string; peer: string }[] = [];
  for (let i = 0; i < size; i++) members.push({ name: `bench${i}`, client: `http://127.0.0.1:${await freePort()}`, peer: `http://127.0.0.1:${await freePort()}` });
  const initialCluster = members.map((m) => `${m.name}=${m.peer}`).join(',');
  const children = members.map((m) =>
    startChild('etcd', [
      '--name', m.name,
      '--data-dir', `${dir}/${m.name}`,
      '--listen-client-urls', m.client,
      '--advertise-client-urls', m.client,
      '--listen-peer-urls', m.peer,
      '--initial-advertise-peer-urls', m.peer,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--logger', 'zap',
      '--log-level', 'warn',
    ]),
  );
  const stop = async () => {
    await Promise.all(children.map((c) => c.stop()));
  };
  try {
    for (const [i, m] of members.entries()) {
      await waitReady(children[i]!, `etcd member ${m.name}`, async () => {
        const res = await fetch(`${m.client}/health`);
        return res.ok && ((await res.json()) as { health?: string }).health === 'true';
      }, 30_000);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoints: members.map((m) => m.client), stop };
}
