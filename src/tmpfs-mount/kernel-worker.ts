/**
 * A serving thread of one kernel-protocol mount: blocking read(2) of
 * /dev/fuse, answer, write(2), again, until the connection goes away. It never
 * waits for the main thread: what it needs (the view, sealed bytes, the key)
 * it already has, and what it learns (lookups with their callers, versions the
 * kernel let go of, problems) it posts without waiting.
 */
import { readSync, writeSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { Dispatcher, REPLY_BUFFER_BYTES, REQUEST_BUFFER_BYTES, serveOne, type FuseIo } from './kernel-dispatch.js';
import { ABANDONED, type FromWorker, type ToWorker, type ViewUpdate, type WorkerData } from './kernel-messages.js';
import { LookupRing } from './lookup-ring.js';

const data = workerData as WorkerData;
const generation = new Int32Array(data.generation);
let seen = 0;

function pending(): ViewUpdate[] {
  // Main bumps the generation after each post: one atomic load per request when nothing changed.
  const now = Atomics.load(generation, 0);
  if (now === seen) return [];
  seen = now;
  const updates: ViewUpdate[] = [];
  for (let m = receiveMessageOnPort(data.port); m !== undefined; m = receiveMessageOnPort(data.port)) updates.push(m.message as ToWorker);
  return updates;
}

const ring = new LookupRing(data.lookups);
const post = (event: FromWorker): void => parentPort!.postMessage(event);
const emit = (event: FromWorker): void => {
  if (event.kind !== 'lookup') return post(event);
  // Lookups go through shared memory; a message only when the main thread should come and collect.
  const pushed = ring.push(event);
  if (pushed === 'ask') post({ kind: 'lookups' });
  else if (pushed === 'full') post(event);
};

const dispatcher = new Dispatcher(
  { key: data.key, connection: new Int32Array(data.connection), rootMtimeMs: data.rootMtimeMs, entryTimeoutMs: data.entryTimeoutMs, attrTimeoutMs: data.attrTimeoutMs, noOpen: data.noOpen, prefillPrefix: data.prefillPrefix },
  new BigInt64Array(data.counters),
  emit,
  pending,
);
dispatcher.table.apply(data.initial);

const io: FuseIo = {
  read: (buf) => readSync(data.fd, buf, 0, buf.length, null),
  write: (buf, length) => {
    writeSync(data.fd, buf, 0, length);
  },
};
const req = Buffer.alloc(REQUEST_BUFFER_BYTES);
const out = Buffer.alloc(REPLY_BUFFER_BYTES);

// Started while mount(8) runs: wait until it has attached the fd (or given up).
const connection = new Int32Array(data.connection);
while (Atomics.load(connection, 1) === 0) Atomics.wait(connection, 1, 0);

let reason = 'the connection ended (unmounted)';
try {
  if (Atomics.load(connection, 1) === ABANDONED) reason = 'mounting failed';
  else while (serveOne(dispatcher, io, req, out));
  if (dispatcher.destroyed) reason = 'the kernel sent DESTROY';
} catch (err) {
  reason = `reading or writing /dev/fuse failed: ${(err as Error).message}`;
} finally {
  data.key.fill(0);
  out.fill(0);
}
post({ kind: 'stopped', reason });
data.port.close();
