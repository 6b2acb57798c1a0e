/**
 * `hush agent` as a real child process (the built dist/), optionally under
 * strace, plus a look into its memory through /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { open, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cleanStaleMounts } from '../../src/tmpfs-mount/index.js';
import { call } from './http.js';
import { HUSH_BIN } from './hush-process.js';
import { until } from './until.js';

export interface AgentProcess {
  child: ChildProcess;
  /** The agent's own pid (not strace's, when traced). */
  pid(): Promise<number>;
  socket: string;
  output(): string;
  exited: Promise<number | null>;
  /** Signals the agent itself (under strace, signalling strace would only detach it) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface AgentProcessOptions {
  store: string;
  token: string;
  socket: string;
  name?: string;
  labels?: Record<string, string>;
  /** Run under `strace -f -o FILE` with these syscalls traced (`flags`: more strace options, e.g. `-y`, `-xx`). */
  strace?: { file: string; syscalls: string[]; flags?: string[] };
  /** Options for node itself, before the script (e.g. `--heapsnapshot-signal=SIGUSR2`). */
  nodeArgs?: string[];
  /** Resolve as soon as the process runs instead of waiting for its session. */
  noWait?: boolean;
  /** Serve the Docker volume plugin under this (unique) name; default none. */
  dockerPlugin?: string;
}

export const mountsDirOf = (opts: { socket: string }): string => `${opts.socket}.mounts`;

export function agentArgs(opts: AgentProcessOptions): string[] {
  return [
    HUSH_BIN,
    'agent',
    '--store',
    opts.store,
    '--token',
    opts.token,
    '--socket',
    opts.socket,
    // Each agent its own mounts directory: an agent cleans stale mounts under its directory at start.
    '--mounts',
    mountsDirOf(opts),
    // No Docker plugin unless asked for by a unique name: several agents run at once here, and /run/docker/plugins/hush.sock is the host's.
    '--docker-plugin',
    opts.dockerPlugin ?? 'off',
    ...(opts.name ? ['--name', opts.name] : []),
    ...Object.entries(opts.labels ?? {}).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
  ];
}

export async function startAgentProcess(opts: AgentProcessOptions): Promise<AgentProcess> {
  const args = [...(opts.nodeArgs ?? []), ...agentArgs(opts)];
  const [command, argv] = opts.strace
    ? ['strace', ['-f', '-qq', ...(opts.strace.flags ?? []), '-o', opts.strace.file, '-e', `trace=${opts.strace.syscalls.join(',')}`, process.execPath, ...args]]
    : [process.execPath, args];
  const env: NodeJS.ProcessEnv = { ...process.env, HUSH_AGENT_DEBUG: '1', HUSH_LOG_LEVEL: 'debug' };
  // Under `npm run coverage` V8 writes a coverage file at exit: the harness's
  // write, not the agent's, and exactly what the strace test looks for.
  // Node copies it into every child's env unless the env names it, so it is set empty, not deleted.
  if (opts.strace) env.NODE_V8_COVERAGE = '';
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const agent: AgentProcess = {
    child,
    socket: opts.socket,
    output: () => output,
    exited,
    pid: async () => (opts.strace ? tracedChildPid(child.pid!) : child.pid!),
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(await agent.pid(), signal);
        } catch {
          child.kill('SIGKILL');
        }
        await exited;
      }
      // An agent killed with -9 leaves its FUSE mounts behind (the next agent would clean them).
      await cleanStaleMounts(mountsDirOf(opts));
    },
  };
  if (!opts.noWait) await waitForSession(agent);
  return agent;
}

/** Resolves once the agent's session with the store is up (its snapshot applied). */
export async function waitForSession(agent: AgentProcess, state = 'ready', timeoutMs = 20_000): Promise<void> {
  const inState = async () => {
    if (agent.child.exitCode !== null || agent.child.signalCode !== null) throw new Error(`agent exited (${agent.child.exitCode ?? agent.child.signalCode}):\n${agent.output()}`);
    try {
      return (await call<{ session: { state: string } }>(agent.socket, 'GET', '/v1/status')).body?.session?.state === state;
    } catch {
      return false; // not listening yet
    }
  };
  await until(inState, `the agent session to be ${state}`, timeoutMs, 50).catch((err: Error) => {
    throw err.message.startsWith('agent exited') ? err : new Error(`agent session not ${state} in time:\n${agent.output()}`);
  });
}

/** Runs `hush agent` expecting it to exit on its own (a refused join). */
export async function runAgentToExit(opts: AgentProcessOptions, timeoutMs = 20_000): Promise<{ code: number | null; output: string }> {
  const agent = await startAgentProcess({ ...opts, noWait: true });
  const timer = setTimeout(() => agent.child.kill('SIGKILL'), timeoutMs);
  const code = await agent.exited;
  clearTimeout(timer);
  return { code, output: agent.output() };
}

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** The pid of the node process strace started (strace's only child). */
async function tracedChildPid(stracePid: number): Promise<number> {
  let children: string[] = [];
  const started = async () => {
    try {
      children = (await readFile(`/proc/${stracePid}/task/${stracePid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean);
    } catch {
      // not there yet
    }
    return children.length > 0;
  };
  await until(started, `a child of strace ${stracePid}`, 5_000, 20);
  return Number(children[0]);
}

/**
 * Whether any of `needles` occurs in the readable memory of process `pid`
 * (every region in /proc/pid/maps, read through /proc/pid/mem). Returns the
 * needles found, with the mapping they were found in.
 */
export async function findInProcessMemory(pid: number, needles: Buffer[]): Promise<{ needle: string; region: string }[]> {
  const found: { needle: string; region: string }[] = [];
  await scanProcessMemory(pid, needles, (needle, region) => {
    if (!found.some((f) => f.needle === needle.toString())) found.push({ needle: needle.toString(), region });
  });
  return found;
}

/** Every occurrence of each of `needles` in the memory of `pid`, with up to `context` bytes before and after it. */
export async function occurrencesInProcessMemory(pid: number, needles: Buffer[], context: number): Promise<{ needle: Buffer; region: string; before: Buffer; after: Buffer }[]> {
  const found: { needle: Buffer; region: string; before: Buffer; after: Buffer }[] = [];
  await scanProcessMemory(
    pid,
    needles,
    (needle, region, view, at) =>
      found.push({ needle, region, before: Buffer.from(view.subarray(Math.max(0, at - context), at)), after: Buffer.from(view.subarray(at + needle.length, at + needle.length + context)) }),
    context,
  );
  return found;
}

async function scanProcessMemory(pid: number, needles: Buffer[], visit: (needle: Buffer, region: string, view: Buffer, at: number) => void, context = 0): Promise<void> {
  const maps = await readFile(`/proc/${pid}/maps`, 'utf8');
  const mem = await open(`/proc/${pid}/mem`, 'r');
  try {
    for (const line of maps.split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+)/.exec(line);
      if (!m || !m[3]!.startsWith('r')) continue;
      if (line.endsWith('[vvar]') || line.endsWith('[vsyscall]')) continue;
      // User-space addresses fit in a double (< 2^47); a bigint position makes the read fail with EIO.
      const start = parseInt(m[1]!, 16);
      const end = parseInt(m[2]!, 16);
      const chunk = 16 * 1024 * 1024;
      const overlap = Math.max(...needles.map((n) => n.length)) - 1 + context;
      for (let at = start; at < end; at += chunk) {
        // Each chunk is read with `context` bytes before it and `overlap` after, so a needle across a boundary is seen (once), with its context.
        const from = Math.max(start, at - context);
        const length = Math.min(end - from, at - from + chunk + overlap);
        const buffer = Buffer.alloc(length);
        let bytesRead = 0;
        try {
          ({ bytesRead } = await mem.read(buffer, 0, length, from));
        } catch {
          continue; // unreadable (guard pages and the like)
        }
        const view = buffer.subarray(0, bytesRead);
        for (const needle of needles) {
          for (let i = view.indexOf(needle, at - from); i !== -1 && i < at - from + chunk; i = view.indexOf(needle, i + 1)) visit(needle, line, view, i);
        }
      }
    }
  } finally {
    await mem.close();
  }
}
