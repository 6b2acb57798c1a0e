/** Runs the real `hush` CLI (the built dist/) as child processes: the one place tests start it. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { call } from './http.js';
import { until } from './until.js';

export const HUSH_BIN = fileURLToPath(new URL('../../bin/hush', import.meta.url));

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a CLI command to completion. */
export function hush(args: string[], options: { env?: Record<string, string>; input?: string | Buffer } = {}): RunResult {
  const result = spawnSync(process.execPath, [HUSH_BIN, ...args], {
    env: { ...process.env, ...options.env },
    input: options.input ?? '',
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Runs a CLI command that must succeed (the suites' `cli`): a failure throws,
 * naming the command, the store it went to and its stderr.
 */
export function hushOk(args: string[], options: { env?: Record<string, string>; input?: string | Buffer } = {}): RunResult {
  const result = hush(args, options);
  if (result.status !== 0) {
    const host = options.env?.HUSH_HOST ? ` via ${options.env.HUSH_HOST}` : '';
    throw new Error(`hush ${args.join(' ')}${host} failed (${result.status}): ${result.stderr}`);
  }
  return result;
}

export interface Finished {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

export interface Running {
  child: ChildProcess;
  stdout(): Buffer;
  stderr(): string;
  finished: Promise<Finished>;
}

/** Starts a CLI command that runs for a while or writes binary output (`hush up`, `hush run`), stdin open. */
export function startHush(args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(process.execPath, [HUSH_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const finished = once(child, 'close').then(([code]) => ({ code: code as number | null, stdout: Buffer.concat(out), stderr: err }));
  return { child, stdout: () => Buffer.concat(out), stderr: () => err, finished };
}

/** Runs a CLI command to completion without blocking the test's event loop (which may be serving what the command talks to). */
export async function runHush(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<Finished> {
  const running = startHush(args, env);
  running.child.stdin!.end();
  const timer = setTimeout(() => running.child.kill('SIGKILL'), timeoutMs);
  try {
    return await running.finished;
  } finally {
    clearTimeout(timer);
  }
}

export interface StoreProcess {
  child: ChildProcess;
  socket: string;
  output(): string;
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
}

/**
 * Starts `hush store` and waits until its admin socket answers and (unless it
 * starts autolocked) its cluster side (PKI, node and HTTPS listeners) is up.
 * `wrapper` is a command that execs the rest in place, keeping the pid
 * (e.g. `prlimit --nofile=N:N` to start the store under a low open-file limit).
 */
export async function startStoreProcess(opts: { data: string; socket: string; home: string; extraArgs?: string[]; logLevel?: string; nodeArgs?: string[]; wrapper?: string[] }): Promise<StoreProcess> {
  const command = [...(opts.wrapper ?? []), process.execPath, ...(opts.nodeArgs ?? []), HUSH_BIN, 'store', '--data', opts.data, '--socket', opts.socket, '--home', opts.home, ...(opts.extraArgs ?? [])];
  const child = spawn(command[0]!, command.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HUSH_LOG_LEVEL: opts.logLevel ?? 'info' },
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const waitForCluster = !(opts.extraArgs ?? []).includes('--autolock');
  const started = async () => {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`store exited during start-up:\n${output}`);
    try {
      const reply = await call<{ cluster: string }>(opts.socket, 'GET', '/healthz');
      return reply.status === 200 && (!waitForCluster || reply.body.cluster === 'ready');
    } catch {
      return false; // not listening yet
    }
  };
  await until(started, 'the store to start', 20_000, 50).catch((err: Error) => {
    child.kill('SIGKILL');
    throw err.message.startsWith('store exited') ? err : new Error(`store did not start in time:\n${output}`);
  });
  return { child, socket: opts.socket, output: () => output, exited };
}

export async function stopProcess(proc: { child: ChildProcess; exited: Promise<unknown> }, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill(signal);
  await proc.exited;
}

/** Waits until the store has recorded its cluster listeners (after unlock) in HUSH_HOME. */
export async function waitForCluster(home: string, timeoutMs = 20_000): Promise<{ nodeAddress: string; adminAddress: string }> {
  let config: { nodeAddress?: string; adminAddress?: string } = {};
  const written = async () => {
    try {
      config = JSON.parse(await readFile(`${home}/config.json`, 'utf8')) as typeof config;
    } catch {
      // not written yet
    }
    return config.nodeAddress !== undefined;
  };
  await until(written, 'the store to record its cluster listeners in config.json', timeoutMs, 50);
  return { nodeAddress: config.nodeAddress!, adminAddress: config.adminAddress ?? '' };
}
