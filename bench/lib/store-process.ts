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

/**
 * `storeArgs` go after the defaults and win over them (commander keeps the
 * last value): e.g. a fixed `--listen` port for a bench that restarts the store.
 * Ready once the admin socket answers and the cluster side (node port,
 * dispatcher) has started.
 */
export async function startStoreProcess(dir: string, nodeArgs: string[] = [], storeArgs: string[] = []): Promise<RunningStore> {
  await mkdir(dir, { recursive: true });
  const socket = join(dir, 'admin.sock');
  const cli = join(REPO_ROOT, 'dist', 'cli', 'main.js');
  // Ephemeral node port, no HTTPS: the bench must not collide with a hush already running here.
  const child = startChild(process.execPath, [...nodeArgs, cli, 'store', '--data', join(dir, 'data'), '--socket', socket, '--home', join(dir, 'home'), '--listen', '127.0.0.1:0', '--admin', '', ...storeArgs], {
    cwd: dir,
    env: { ...process.env, HUSH_LOG_LEVEL: 'warn' },
  });
  try {
    await waitReady(child, 'hush store', async () => {
      const health = await call(socket, undefined, 'GET', '/healthz');
      return health.status === 200 && (JSON.parse(health.body) as { cluster?: string }).cluster === 'ready';
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
