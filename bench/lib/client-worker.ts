/**
 * A load-generating client process (forked by clients.ts), so that the
 * client's CPU is separate from the coordinator's and can be measured, and
 * so that more than one client process can drive a server when one is not
 * enough. Protocol over IPC:
 *   parent → {job}     worker sets up, warms up, replies {type:'ready'}
 *   parent → 'go'      worker runs the load, replies {type:'result', run}
 *   parent disconnects worker exits
 *   any error          worker replies {type:'error', message} and exits
 */
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { Etcd3 } from 'etcd3';
import { runLoad, type LoadOptions, type LoadRun } from './load.js';
import { call } from './store-process.js';

export interface ClientJob {
  target: { kind: 'hush'; socket: string } | { kind: 'etcd'; endpoint: string };
  /** Makes keys and names unique across workers and rounds. */
  prefix: string;
  valueBytes: number;
  warmup: number;
  load: LoadOptions;
}

export type WorkerMessage = { type: 'ready' } | { type: 'result'; run: LoadRun } | { type: 'error'; message: string };

interface Driver {
  op(name: string): Promise<void>;
  close(): void;
}

function hushDriver(socket: string, value: Buffer, concurrency: number): Driver {
  // One keep-alive connection per in-flight request, as a pooled REST client would use.
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  const data = value.toString('base64');
  return {
    async op(name) {
      const res = await call(socket, agent, 'POST', '/v1/secrets', Buffer.from(JSON.stringify({ name, data })));
      if (res.status !== 201) throw new Error(`POST /v1/secrets → ${res.status} ${res.body.slice(0, 200)}`);
    },
    close: () => agent.destroy(),
  };
}

function etcdDriver(endpoint: string, value: Buffer): Driver {
  const client = new Etcd3({ hosts: endpoint });
  return {
    async op(name) {
      await client.put(name).value(value);
    },
    close: () => client.close(),
  };
}

async function main(job: ClientJob, send: (m: WorkerMessage) => void, go: Promise<void>): Promise<void> {
  const value = randomBytes(job.valueBytes);
  const driver = job.target.kind === 'hush' ? hushDriver(job.target.socket, value, job.load.concurrency) : etcdDriver(job.target.endpoint, value);
  try {
    // Warm-up: opens the connections and lets the JIT settle before the clock starts.
    await runLoad({ ...job.load, count: job.warmup }, (i) => driver.op(`${job.prefix}-warm-${i}`));
    send({ type: 'ready' });
    await go;
    const run = await runLoad(job.load, (i) => driver.op(`${job.prefix}-${i}`));
    send({ type: 'result', run });
  } finally {
    driver.close();
  }
}

if (process.send) {
  const send = (m: WorkerMessage) => process.send!(m);
  let start!: () => void;
  const go = new Promise<void>((resolve) => (start = resolve));
  process.on('message', (message: ClientJob | 'go') => {
    if (message === 'go') return start();
    // On success stay alive (the IPC channel keeps us) so the parent can read our CPU time, then disconnect us.
    main(message, send, go).catch((err: Error) => {
      send({ type: 'error', message: err.message });
      process.disconnect();
    });
  });
  // The coordinator going away (crash, Ctrl-C) must not leave a client behind.
  process.on('disconnect', () => setTimeout(() => process.exit(0), 100).unref());
}
