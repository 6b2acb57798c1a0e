/**
 * Many simulated agents over a few processes (agent-sim-worker.ts): one
 * process has one event loop and 20,000 file descriptors at most, and a
 * thousand TLS sessions in one loop would measure that loop, not the store.
 * Agents are dealt to the processes in turn when they join and stay there.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './tmp.js';

export type WorkerCommand =
  | { type: 'join'; target: string; token: string; names: string[]; concurrency: number }
  | { type: 'connect'; target: string; sessions: { name: string; service: string }[]; watch: string[]; countBytes: boolean; readyTimeoutMs: number }
  | { type: 'acked'; key: string }
  | { type: 'ready' }
  | { type: 'mark' }
  | { type: 'collect' }
  | { type: 'close' }
  | { type: 'rss' };

export type WorkerRequest = WorkerCommand & { id: number };

export type WorkerReply = { id: number } & ({ ok: true; result: unknown } | { ok: false; error: string });

export interface SessionRecord {
  name: string;
  service: string;
  state: string;
  /** When each Session call was made (the first connect, then each reconnect attempt). */
  attempts: number[];
  /** When each snapshot arrived: the session was (re)established. */
  ready: number[];
  /** When each stream ended. */
  lost: number[];
  /** `${secret}@${version}` → when it arrived, in which revision, and when that revision was acked. */
  got: Record<string, { receivedAt: number; revision: number; ackedAt?: number }>;
  messagesSinceMark: number;
  /** Bytes through this agent's counting relay since the last mark (with countBytes only). */
  bytesToAgentSinceMark?: number;
  bytesToStoreSinceMark?: number;
}

const WORKER = join(REPO_ROOT, 'bench', 'lib', 'agent-sim-worker.ts');

class Worker {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly started: Promise<void>;

  constructor(readonly child: ChildProcess) {
    let started!: () => void;
    this.started = new Promise((resolve) => (started = resolve));
    child.on('message', (reply: WorkerReply) => {
      if (reply.id === 0) return started();
      const w = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (reply.ok) w?.resolve(reply.result);
      else w?.reject(new Error(`simulated agents (pid ${child.pid}): ${reply.error}`));
    });
    child.on('exit', (code, signal) => {
      for (const w of this.waiting.values()) w.reject(new Error(`simulated-agent process ${child.pid} exited (${code ?? signal})`));
      this.waiting.clear();
    });
  }

  call<T>(request: WorkerCommand): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ ...request, id });
    });
  }
}

export class SimFleet {
  private readonly home = new Map<string, Worker>();

  private constructor(private readonly workers: Worker[]) {}

  /** `processes` worker processes, each a Node with tsx (the simulator runs the agent's TypeScript sources). */
  static async start(processes: number): Promise<SimFleet> {
    const workers = Array.from(
      { length: processes },
      () => new Worker(fork(WORKER, [], { cwd: REPO_ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, HUSH_LOG_LEVEL: 'warn' } })),
    );
    process.once('exit', () => workers.forEach((w) => w.child.kill('SIGKILL')));
    await Promise.all(workers.map((w) => w.started));
    return new SimFleet(workers);
  }

  get pids(): number[] {
    return this.workers.map((w) => w.child.pid!);
  }

  /** Joins one node per name through the real join flow, dealt over the processes in turn. */
  async join(target: string, token: string, names: string[], concurrencyPerProcess = 8): Promise<void> {
    const share = this.workers.map(() => [] as string[]);
    names.forEach((name, i) => {
      share[i % this.workers.length]!.push(name);
      this.home.set(name, this.workers[i % this.workers.length]!);
    });
    await Promise.all(this.workers.map((w, i) => (share[i]!.length > 0 ? w.call({ type: 'join', target, token, names: share[i]!, concurrency: concurrencyPerProcess }) : undefined)));
  }

  /** Opens a session for each (joined) name whose Hello reports one container of `service`; resolves once every one holds its snapshot. */
  async connect(target: string, sessions: { name: string; service: string }[], opts: { watch: string[]; countBytes?: boolean; readyTimeoutMs?: number }): Promise<void> {
    const byWorker = new Map<Worker, { name: string; service: string }[]>();
    for (const s of sessions) {
      const w = this.home.get(s.name);
      if (!w) throw new Error(`${s.name} has not joined`);
      byWorker.set(w, [...(byWorker.get(w) ?? []), s]);
    }
    await Promise.all(
      [...byWorker].map(([w, list]) => w.call({ type: 'connect', target, sessions: list, watch: opts.watch, countBytes: opts.countBytes ?? false, readyTimeoutMs: opts.readyTimeoutMs ?? 60_000 })),
    );
  }

  /** Sessions that have acked the revision carrying `secret` at `version`. */
  async acked(secret: string, version: number): Promise<number> {
    return sum(await Promise.all(this.workers.map((w) => w.call<number>({ type: 'acked', key: `${secret}@${version}` }))));
  }

  /** Sessions in the 'ready' state (connected, snapshot applied). */
  async ready(): Promise<number> {
    return sum(await Promise.all(this.workers.map((w) => w.call<number>({ type: 'ready' }))));
  }

  /** Zeroes the per-session message and byte counts. */
  async mark(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.call({ type: 'mark' })));
  }

  async collect(): Promise<SessionRecord[]> {
    return (await Promise.all(this.workers.map((w) => w.call<SessionRecord[]>({ type: 'collect' })))).flat();
  }

  /** Closes every session (the identities stay: the same nodes can connect again). */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.call({ type: 'close' })));
  }

  async rss(): Promise<number[]> {
    return Promise.all(this.workers.map((w) => w.call<number>({ type: 'rss' })));
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.child.exitCode !== null || w.child.signalCode !== null) return resolve();
            w.child.once('exit', () => resolve());
            w.child.disconnect();
            setTimeout(() => w.child.kill('SIGKILL'), 5_000).unref();
          }),
      ),
    );
  }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
