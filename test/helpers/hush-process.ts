/** Runs the real `hush` CLI (the built dist/) as child processes. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { call } from './http.js';

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
 */
export async function startStoreProcess(opts: { data: string; socket: string; home: string; extraArgs?: string[] }): Promise<StoreProcess> {
  const child = spawn(process.execPath, [HUSH_BIN, 'store', '--data', opts.data, '--socket', opts.socket, '--home', opts.home, ...(opts.extraArgs ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HUSH_LOG_LEVEL: 'info' },
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const deadline = Date.now() + 20_000;
  const waitForCluster = !(opts.extraArgs ?? []).includes('--autolock');
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`store exited during start-up:\n${output}`);
    try {
      const reply = await call<{ cluster: string }>(opts.socket, 'GET', '/healthz');
      if (reply.status === 200 && (!waitForCluster || reply.body.cluster === 'ready')) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`store did not start in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, socket: opts.socket, output: () => output, exited };
}

export async function stopProcess(proc: { child: ChildProcess; exited: Promise<unknown> }, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill(signal);
  await proc.exited;
}

/** Waits until the store has recorded its cluster listeners (after unlock) in HUSH_HOME. */
export async function waitForCluster(home: string, timeoutMs = 20_000): Promise<{ nodeAddress: string; adminAddress: string }> {
  const { readFile } = await import('node:fs/promises');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const config = JSON.parse(await readFile(`${home}/config.json`, 'utf8')) as { nodeAddress?: string; adminAddress?: string };
      if (config.nodeAddress) return { nodeAddress: config.nodeAddress, adminAddress: config.adminAddress ?? '' };
    } catch {
      // not written yet
    }
    if (Date.now() > deadline) throw new Error(`store did not bring up its cluster listeners within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
