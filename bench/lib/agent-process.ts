/**
 * A real `hush agent` process for benchmarks: joins with a token, serves
 * its runtime API on a unix socket, and reports what it logs as parsed
 * lines (with their own timestamps), so a bench can tell when its session
 * with a store was established without asking it.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from './tmp.js';
import { startChild, waitReady, type Child } from './proc.js';
import { call } from './store-process.js';

export interface AgentLogLine {
  /** pino's `time`: milliseconds since the epoch, taken in the agent. */
  time: number;
  msg: string;
  [field: string]: unknown;
}

export interface RunningAgent {
  name: string;
  socket: string;
  child: Child;
  /** Every JSON line the agent logged so far, oldest first. */
  lines: AgentLogLine[];
  /** Registers a container of `service` (the agent mounts its secrets); resolves once the store allowed it. */
  startContainer(id: string, service: string): Promise<void>;
}

export async function startAgent(dir: string, name: string, stores: string[], token: string): Promise<RunningAgent> {
  await mkdir(dir, { recursive: true });
  const socket = join(dir, 'agent.sock');
  const cli = join(REPO_ROOT, 'dist', 'cli', 'main.js');
  const args = [cli, 'agent', '--store', stores.join(','), '--token', token, '--name', name, '--socket', socket, '--mounts', join(dir, 'mounts'), '--docker-plugin', 'off'];
  const child = startChild(process.execPath, args, { cwd: dir, env: { ...process.env, HUSH_LOG_LEVEL: 'info' } });
  const lines: AgentLogLine[] = [];
  for (const stream of [child.process.stdout!, child.process.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as AgentLogLine;
        if (typeof parsed.time === 'number' && typeof parsed.msg === 'string') lines.push(parsed);
      } catch {
        // not a log line
      }
    });
  }
  try {
    await waitReady(child, `hush agent ${name}`, async () => {
      const res = await call(socket, undefined, 'GET', '/v1/status');
      return res.status === 200 && (JSON.parse(res.body) as { session?: { state?: string } }).session?.state === 'ready';
    }, 30_000);
  } catch (err) {
    await child.stop();
    throw err;
  }
  return {
    name,
    socket,
    child,
    lines,
    async startContainer(id, service) {
      const res = await call(socket, undefined, 'POST', '/v1/containers', Buffer.from(JSON.stringify({ id, service })));
      if (res.status !== 201) throw new Error(`agent ${name}: POST /v1/containers → ${res.status} ${res.body.slice(0, 200)}`);
    },
  };
}
