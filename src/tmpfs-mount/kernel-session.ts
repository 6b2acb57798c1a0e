/**
 * A mount served over the FUSE kernel protocol, no libfuse: open /dev/fuse,
 * have mount(8) attach it (the fd as the tool's fd 3), start the serving
 * threads, answer INIT, and from then on keep the threads and the kernel in
 * step with the source (kernel-view.ts).
 *
 * The main thread never serves a request and never waits for one: it posts
 * view updates, writes notifications, and records what the threads report.
 * A notification may wait for a directory lock a pending LOOKUP holds; the
 * serving threads answer that LOOKUP without the main thread, so it cannot
 * deadlock.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { HushError } from '../errors/index.js';
import { log } from '../log/index.js';
import { run } from './exec.js';
import { Op } from './fuse-abi.js';
import { ABANDONED, Counter, MOUNTED, type FromWorker, type InitEvent, type WorkerData } from './kernel-messages.js';
import { ATTR_TIMEOUT_MS, DEFAULT_SERVING_THREADS, ENTRY_TIMEOUT_MS, INIT_TIMEOUT_MS, MAX_SERVING_THREADS } from './kernel-options.js';
import { MountView } from './kernel-view.js';
import { isMounted, readMounts } from './mountinfo.js';
import { LookupRing, newLookupRing } from './lookup-ring.js';
import { KEY_BYTES, MountKey } from './shared-version.js';
import { fuseConnectionDir } from './stale.js';
import type { MountStats, SecretSource, SecretsMount } from './types.js';

const MOUNT_TOOL_TIMEOUT_MS = 5_000;

/**
 * Connections whose serving threads still run: after a lazy unmount, or while
 * a bind of the mount lives on in a container's namespace. A thread blocked in
 * read(2) cannot be stopped from JavaScript, and Node joins its threads when
 * the process exits: exiting would wait for the connection to end, which a
 * stray process in a container could put off forever. So on the way out every
 * connection still open is aborted (synchronously: 'exit' handlers cannot
 * wait). Its readers get ENOTCONN, as they would from fuse-native's exit.
 */
const openConnections = new Set<string>();
let exitHookInstalled = false;

function abortOnExit(connectionDir: string): () => void {
  openConnections.add(connectionDir);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const dir of openConnections) {
        try {
          // fusectl's control file (in /sys): nothing lands on disk.
          writeFileSync(`${dir}/abort`, '1');
        } catch {
          // Already gone.
        }
      }
    });
  }
  return () => openConnections.delete(connectionDir);
}

export interface KernelMountOptions {
  threads?: number;
  noOpen?: boolean;
  prefill?: boolean;
}

/** Opens /dev/fuse for a new connection; a clear error when this process cannot. */
function openFuseDevice(): number {
  try {
    return openSync('/dev/fuse', 'r+');
  } catch (err) {
    throw new HushError('unavailable', `cannot open /dev/fuse (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the kernel FUSE implementation needs it and root`);
  }
}

/** mount(8) with our fd as its fd 3: -i (no mount.fuse helper), -n (no utab write: the agent writes nothing). */
function attach(fd: number, target: string): Promise<void> {
  const options = 'fd=3,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions,ro';
  return new Promise((resolve, reject) => {
    const child = spawn('mount', ['-n', '-i', '-t', 'fuse.hush', '-o', options, 'hush', target], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), MOUNT_TOOL_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new HushError('unavailable', `cannot run mount(8): ${err.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new HushError('unavailable', `mounting ${target} over /dev/fuse failed: ${stderr.trim() || `mount exited ${code}`}`));
    });
  });
}

/**
 * Runs a serving thread. Under tsx (tests, the bench: this file is .ts) a
 * worker does not inherit tsx's loader on Node 20, so it registers it first.
 */
function startWorker(workerData: WorkerData, port: MessagePort): Worker {
  const options = { workerData, transferList: [port] };
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./kernel-worker.js', import.meta.url), options);
  // tsx's ESM API by path: its `import` export, which createRequire cannot pick.
  const api = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href;
  const entry = new URL('./kernel-worker.ts', import.meta.url).href;
  return new Worker(`import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`, { ...options, eval: true });
}

export async function mountKernel(target: string, source: SecretSource, options: KernelMountOptions = {}): Promise<SecretsMount> {
  const threads = options.threads ?? DEFAULT_SERVING_THREADS;
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_SERVING_THREADS) {
    throw new HushError('bad_request', `serving threads must be an integer from 1 to ${MAX_SERVING_THREADS}`);
  }
  const fd = openFuseDevice();
  const key = randomBytes(KEY_BYTES);
  const mountKey = new MountKey(Buffer.from(key));
  const generation = new SharedArrayBuffer(4);
  // Int32 × 2: [0] the INIT state (kernel-dispatch.ts), [1] MOUNTED or ABANDONED once mount(8) is done.
  const connection = new SharedArrayBuffer(8);
  const attached = (state: number): void => {
    Atomics.store(new Int32Array(connection), 1, state);
    Atomics.notify(new Int32Array(connection), 1);
  };
  const counters = new SharedArrayBuffer(8 * Counter.SLOTS);
  const channels = Array.from({ length: threads }, () => new MessageChannel());
  const ringBuffers = channels.map(() => newLookupRing());
  const rings = ringBuffers.map((b) => new LookupRing(b));
  const mlog = log.child({ mountpoint: target });

  // Prefill names (kernel-prefill.ts): random per mount, known only to this process and its lookup child.
  const prefillPrefix = `.hush-fill-${randomBytes(16).toString('hex')}-`;
  const view = new MountView(
    source,
    mountKey,
    {
      post(update) {
        for (const c of channels) c.port1.postMessage(update);
        // After the posts: a thread that sees the new generation finds them on its port.
        Atomics.add(new Int32Array(generation), 0, 1);
      },
      notify(message) {
        try {
          writeSync(fd, message);
          return null;
        } catch (err) {
          return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        }
      },
      collectLookups: () => collectLookups(),
      warn: (fields, message) => mlog.warn(fields, message),
    },
    options.prefill === false ? undefined : { mountpoint: target, prefix: prefillPrefix },
  );
  const initial = view.initial();
  // Nothing runs between the first view and the subscription: no change is missed.
  const unsubscribe = source.onChange(() => view.refresh());

  let noOpen = false;
  let stopped = 0;
  let workers: Worker[] = [];
  let fdClosed = false;
  const closeDevice = () => {
    if (fdClosed) return;
    fdClosed = true;
    closeSync(fd);
  };
  let onInit: (e: InitEvent) => void = () => {};
  const initDone = new Promise<InitEvent>((resolve) => (onInit = resolve));

  const collectLookups = (): void => {
    for (const ring of rings) ring.drain((r) => view.lookedUp(r.node, r));
  };
  const handle = (event: FromWorker): void => {
    switch (event.kind) {
      case 'init':
        onInit(event);
        break;
      case 'lookup':
        view.lookedUp(event.node, event);
        break;
      case 'lookups':
        collectLookups();
        break;
      case 'dropped':
        // What the threads wrote before this message is in their rings: take it first, so releases follow lookups.
        collectLookups();
        for (const node of event.nodes) view.dropped(node);
        break;
      case 'problem':
        // The thread's message names an opcode and a node id, never bytes of a file.
        mlog[event.level]({ op: event.op, node: event.node, error: event.message }, 'secrets mount: request problem');
        break;
      case 'stopped':
        mlog.debug({ reason: event.reason }, 'secrets mount: serving thread stopped');
        break;
    }
  };
  let forgetOnClose = (): void => {};
  /** fusectl's directory of this connection, once mounted. */
  let connectionDir: string | undefined = undefined;
  const abort = (): void => {
    if (connectionDir === undefined) return;
    try {
      writeFileSync(`${connectionDir}/abort`, '1');
    } catch (err) {
      mlog.warn({ error: (err as Error).message }, 'secrets mount: could not abort the FUSE connection');
    }
  };
  const exited = () => {
    if (++stopped < workers.length) return;
    forgetOnClose();
    closeDevice();
  };

  const workerData = (port: MessagePort, lookups: SharedArrayBuffer): WorkerData => ({
    fd,
    key,
    port,
    generation,
    connection,
    counters,
    lookups,
    rootMtimeMs: Date.now(),
    entryTimeoutMs: ENTRY_TIMEOUT_MS,
    attrTimeoutMs: ATTR_TIMEOUT_MS,
    noOpen: options.noOpen ?? true,
    prefillPrefix,
    initial,
  });
  workers = channels.map((c, i) => {
    const w = startWorker(workerData(c.port2, ringBuffers[i]!), c.port2);
    w.on('message', handle);
    w.on('error', (err) => {
      // A thread that died leaves requests unanswered: end the connection so readers get an error, not a hang.
      mlog.error({ error: err.message }, 'secrets mount: a serving thread failed; aborting the connection');
      abort();
    });
    w.on('exit', exited);
    // Blocked in read(2) for the mount's whole life: not a reason to keep the process running.
    w.unref();
    return w;
  });
  key.fill(0); // each thread has its copy; the main thread seals with mountKey's

  // The threads start (an isolate each, tens of ms) while mount(8) runs; they wait for it to finish.
  try {
    await attach(fd, target);
    attached(MOUNTED);
  } catch (err) {
    attached(ABANDONED);
    unsubscribe();
    mountKey.destroy();
    throw err;
  }
  const entry = (await readMounts()).find((m) => m.mountpoint === target);
  connectionDir = entry && (await fuseConnectionDir(entry));
  if (connectionDir === undefined) mlog.warn('secrets mount: no fusectl entry for this connection; the agent may wait for it at exit');
  else if (stopped < workers.length) forgetOnClose = abortOnExit(connectionDir);

  // A timer that holds the process while it waits: the threads are unref'd.
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), INIT_TIMEOUT_MS)));
  const first = await Promise.race([initDone, timeout]);
  clearTimeout(timer);
  if (first === undefined || first.refused !== null) {
    unsubscribe();
    mountKey.destroy();
    abort();
    await detach(target);
    throw new HushError(
      'unavailable',
      first === undefined ? `the kernel sent no FUSE INIT for ${target} within ${INIT_TIMEOUT_MS} ms` : `FUSE INIT refused: ${first.refused}`,
    );
  }
  noOpen = first.noOpen;
  const fields = { protocol: `${first.kernel.major}.${first.kernel.minor}`, spoken: `7.${first.minor}`, maxReadahead: first.kernel.maxReadahead, threads, noOpen };
  if (noOpen || options.noOpen === false) mlog.debug(fields, 'secrets mount: kernel FUSE protocol up');
  else mlog.warn(fields, 'secrets mount: the kernel does not offer no_open; every open reaches the agent (answered keep_cache per version node)');

  let unmounting: Promise<void> | undefined;
  return {
    mountpoint: target,
    implementation: 'kernel',
    stats: () => ({ ...statsOf(new BigInt64Array(counters), noOpen), retained: view.size.retained }),
    lookups: () => {
      collectLookups();
      return view.lookups.list();
    },
    settled: () => view.settled(),
    unmount: () =>
      (unmounting ??= (async () => {
        unsubscribe();
        // Names first: from here on every lookup (also through a bind of this mount elsewhere) finds nothing.
        view.clear();
        view.dispose();
        mountKey.destroy();
        await detach(target);
        // The serving threads stay until the kernel ends the connection: a reader that still
        // holds a file open keeps reading its version (lazy unmount), then they exit.
      })()),
  };
}

/** umount, or lazily when busy. */
async function detach(target: string): Promise<void> {
  const plain = await run('umount', [target]);
  if (plain.ok || !(await isMounted(target))) return;
  const lazy = await run('umount', ['-l', target]);
  if (!lazy.ok && (await isMounted(target))) throw new HushError('internal', `unmounting ${target} failed: ${plain.stderr}; ${lazy.stderr}`);
}

function statsOf(c: BigInt64Array, noOpen: boolean): Omit<MountStats, 'retained'> {
  const n = (i: number): number => Number(Atomics.load(c, i));
  let requests = 0;
  for (let i = 0; i < 64; i++) requests += n(i);
  return {
    requests,
    lookup: n(Op.LOOKUP),
    getattr: n(Op.GETATTR) + n(Op.STATX),
    readdir: n(Op.READDIR) + n(Op.READDIRPLUS),
    open: n(Op.OPEN) + n(Op.OPENDIR),
    read: n(Op.READ),
    release: n(Op.RELEASE) + n(Op.RELEASEDIR),
    forget: n(Op.FORGET) + n(Op.BATCH_FORGET),
    refused: n(Counter.REFUSED),
    errors: n(Counter.ERRORS),
    stale: n(Counter.STALE),
    openHandles: noOpen ? 0 : Math.max(0, n(Op.OPEN) - n(Op.RELEASE)),
  };
}
