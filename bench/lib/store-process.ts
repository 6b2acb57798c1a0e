/** A real `hush store` process on a unix socket, as an operator would run it. */
import { mkdir } from 'node:fs/promises';
import { request, type Agent } from 'node:http';
import { join } from 'node:path';
import { REPO_ROOT } from './tmp.js';
import { startChild, waitReady, type Child } from './proc.js';

export interface RunningStore {
  socket: string;
  child: Child;
}

export interface StoreProcessOptions {
  /** Node-protocol listener (default an ephemeral port: the bench must not collide with a hush already running here). */
  listen?: string;
  /** More `hush store` flags (e.g. the etcd backend's). */
  args?: string[];
  /** Wait until the cluster side (node listener) is up, not only the admin socket. */
  waitForCluster?: boolean;
}

export async function startStoreProcess(dir: string, nodeArgs: string[] = [], options: StoreProcessOptions = {}): Promise<RunningStore> {
  await mkdir(dir, { recursive: true });
  const socket = join(dir, 'admin.sock');
  const cli = join(REPO_ROOT, 'dist', 'cli', 'main.js');
  // No HTTPS: the bench must not collide with a hush already running here.
  const storeArgs = ['store', '--data', join(dir, 'data'), '--socket', socket, '--home', join(dir, 'home'), '--listen', options.listen ?? '127.0.0.1:0', '--admin', '', ...(options.args ?? [])];
  const child = startChild(process.execPath, [...nodeArgs, cli, ...storeArgs], {
    cwd: dir,
    env: { ...process.env, HUSH_LOG_LEVEL: 'warn' },
  });
  try {
    await waitReady(child, 'hush store', async () => {
      const res = await call(socket, undefined, 'GET', '/healthz');
      return res.status === 200 && (!options.waitForCluster || (JSON.parse(res.body) as { cluster?: string }).cluster === 'ready');
    });
  } catch (err) {
    await child.stop();
    throw err;
  }
  return { socket, child };
}

/** One request over the unix socket; resolves with the status and body once the response has ended. */
export function call(socket: string, agent: Agent | undefined, method: string, path: string, body?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (body) Object.assign(headers, { 'content-type': 'application/json', 'content-length': body.length });
    const req = request({ socketPath: socket, agent, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
