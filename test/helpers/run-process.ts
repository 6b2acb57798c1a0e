/** Runs `hush` commands that produce binary output or run for a while (hush run). */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { HUSH_BIN } from './hush-process.js';

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

export function startHush(args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(process.execPath, [HUSH_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const finished = once(child, 'close').then(([code]) => ({ code: code as number | null, stdout: Buffer.concat(out), stderr: err }));
  return { child, stdout: () => Buffer.concat(out), stderr: () => err, finished };
}

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

/** FUSE mounts (type fuse.hush) currently mounted at or under `dir`. */
export async function hushMountsUnder(dir: string): Promise<string[]> {
  const lines = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n');
  return lines
    .map((line) => line.split(' '))
    .filter((f) => f.length > 4 && (f[4] === dir || f[4]!.startsWith(`${dir}/`)) && line(f).includes('fuse.hush'))
    .map((f) => f[4]!);
}

const line = (fields: string[]) => fields.join(' ');

export async function until(predicate: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
