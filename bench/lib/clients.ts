/** Runs a load from one or more forked client processes at once, and measures everyone's CPU. */
import { fork, type ChildProcess } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientJob, WorkerMessage } from './client-worker.js';
import { summarize, type LoadRun, type LoadSummary } from './load.js';
import { cpuSeconds } from './proc.js';

// Same extension as this module: .ts under tsx (fork inherits tsx's loader via execArgv), .js when compiled.
const WORKER = fileURLToPath(new URL(`./client-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

export interface ClientsResult extends LoadSummary {
  clients: number;
  /** CPU cores used during the measured part, by the server and by all clients together. */
  serverCores: number;
  clientCores: number;
}

function nextMessage(child: ChildProcess): Promise<WorkerMessage> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: WorkerMessage) => {
      cleanup();
      if (m.type === 'error') reject(new Error(`client process: ${m.message}`));
      else resolve(m);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`client process exited (${code}) before answering`));
    };
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/**
 * Splits `job.load.concurrency` over `clients` processes, warms all of them up,
 * starts them together, and merges their runs. `serverPid` is measured for CPU.
 */
export async function runClients(job: ClientJob, clients: number, serverPid: number): Promise<ClientsResult> {
  const children = Array.from({ length: clients }, () => fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  try {
    const jobs = children.map((_, i) => ({
      ...job,
      prefix: `${job.prefix}-c${i}`,
      warmup: Math.ceil(job.warmup / clients),
      load: { ...job.load, concurrency: Math.ceil(job.load.concurrency / clients), count: Math.ceil(job.load.count / clients) },
    }));
    await Promise.all(children.map((child, i) => {
      const ready = nextMessage(child);
      child.send(jobs[i]);
      return ready;
    }));
    const cpu = () => ({ server: cpuSeconds(serverPid), clients: children.reduce((n, c) => n + cpuSeconds(c.pid!), 0) });
    const before = cpu();
    const results = children.map((child) => nextMessage(child));
    for (const child of children) child.send('go');
    const runs = (await Promise.all(results)).map((m) => (m as { run: LoadRun }).run);
    const after = cpu();
    const summary = summarize(runs);
    return { ...summary, clients, serverCores: (after.server - before.server) / summary.seconds, clientCores: (after.clients - before.clients) / summary.seconds };
  } finally {
    await Promise.all(children.map(stopChild));
  }
}

/** Disconnecting makes a worker exit; one that does not within a second is killed. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  if (child.connected) child.disconnect();
  const timer = setTimeout(() => child.kill('SIGKILL'), 1000);
  await exited;
  clearTimeout(timer);
}
