/**
 * The agent's runtime API over its real unix socket, with the store replaced
 * by a scripted StoreLink: request validation, the decision outcomes (201,
 * 403, 409, 503, 504), the container list, and the socket's permissions.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  ContainerRegistry,
  createRuntimeApp,
  DecisionTimeout,
  noMounts,
  SecretCache,
  type MountManager,
  type StoreLink,
} from '../../src/agent/index.js';
import { HushError } from '../../src/errors/index.js';
import { listenOnUnixSocket } from '../../src/http/index.js';
import { log as rootLog } from '../../src/log/index.js';
import type { WireContainer, WireDecision } from '../../src/protocol/index.js';
import { call, closeClients } from '../helpers/http.js';
import { rejection } from '../helpers/assert.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

type Answer = WireDecision | Error | 'never';

/** A StoreLink whose answers the test scripts; it also fills the cache the way the store does before allowing. */
class ScriptedLink implements StoreLink {
  answer: (c: WireContainer) => Answer = () => ({ request_id: '', allowed: true, reason: '', revision: 1 });
  starts: WireContainer[] = [];
  stops: string[] = [];
  identified: WireContainer[] = [];
  constructor(private readonly cache: SecretCache) {}

  async requestStart(container: WireContainer, timeoutMs: number): Promise<WireDecision> {
    this.starts.push(container);
    const answer = this.answer(container);
    if (answer === 'never') {
      await new Promise((r) => setTimeout(r, timeoutMs));
      throw new DecisionTimeout(timeoutMs);
    }
    if (answer instanceof Error) throw answer;
    if (answer.allowed) {
      this.cache.apply({
        revision: this.cache.revision + 1,
        upserts: [{ name: 'db_password', version: 1, data: Buffer.from('pw'), created_at_ms: Date.now() }],
        removals: [],
        services: [{ service: container.service, grants: [{ source: 'db_password', target: 'db', uid: 0, gid: 0, mode: 0o400 }] }],
        removed_services: [],
      });
    }
    return answer;
  }

  notifyStop(containerId: string): void {
    this.stops.push(containerId);
  }

  notifyIdentified(container: WireContainer): void {
    this.identified.push(container);
  }
}

const log = rootLog.child({}, { level: 'silent' });

describe('agent runtime API (unix socket, scripted store)', function () {
  this.timeout(20_000);
  let dir: string;
  let socket: string;
  let server: Server;
  let cache: SecretCache;
  let link: ScriptedLink;
  let mounted: string[];
  let unmounted: string[];

  beforeEach(async () => {
    dir = await tempDir('hush-agent-api-');
    socket = join(dir, 'run', 'agent.sock');
    cache = new SecretCache();
    link = new ScriptedLink(cache);
    mounted = [];
    unmounted = [];
    const mounts: MountManager = {
      mount: async ({ containerId, source }) => {
        mounted.push(`${containerId}:${source.list().map((f) => f.name).join(',')}`);
        return `/run/hush/mounts/${containerId}`;
      },
      unmount: async (id) => {
        unmounted.push(id);
      },
      close: async () => {},
    };
    const containers = new ContainerRegistry({ link, cache, mounts, log, decisionTimeoutMs: 300 });
    server = await listenOnUnixSocket(createRuntimeApp({ containers, status: () => ({ ok: true }), held: () => cache.held() }), socket);
  });
  afterEach(async () => {
    closeClients();
    await new Promise((r) => server.close(r));
    cache.destroy();
    await removeDir(dir);
  });

  const post = (body: unknown, raw?: string, headers?: Record<string, string>) => call<{ error?: { code: string; message: string } }>(socket, 'POST', '/v1/containers', body, raw, headers);

  it('creates the socket with mode 0600', async () => {
    expect((await stat(socket)).mode & 0o777).to.equal(0o600);
  });

  it('refuses malformed JSON, a non-object body, unknown fields and bad ids with 400 and says why', async () => {
    const cases: [unknown, string | undefined, string, RegExp][] = [
      [undefined, '{"id": "c1", ', 'bad_request', /malformed JSON/],
      [undefined, '[1,2]', 'bad_request', /expected a JSON object/],
      [{ id: 'c1', service: 'api', image: 'x' }, undefined, 'unknown_field', /unknown field "image"/],
      [{ service: 'api' }, undefined, 'bad_request', /missing field "id"/],
      [{ id: 'c1' }, undefined, 'bad_request', /missing field "service"/],
      [{ id: '../etc', service: 'api' }, undefined, 'bad_request', /field "id" must be 1 to 128 letters/],
      [{ id: 'a'.repeat(129), service: 'api' }, undefined, 'bad_request', /field "id"/],
      [{ id: '-lead', service: 'api' }, undefined, 'bad_request', /field "id"/],
      [{ id: 'c1', service: 'bad/name' }, undefined, 'bad_request', /field "service"/],
      [{ id: 7, service: 'api' }, undefined, 'bad_request', /field "id" must be string/],
    ];
    for (const [body, raw, code, message] of cases) {
      const reply = await post(body, raw);
      expect(reply.status, JSON.stringify(body ?? raw)).to.equal(400);
      expect(reply.body.error!.code).to.equal(code);
      expect(reply.body.error!.message).to.match(message);
    }
    const noType = await post(undefined, '{"id":"c1","service":"api"}', { 'content-type': 'text/plain' });
    expect(noType.status).to.equal(400);
    expect(link.starts).to.deep.equal([], 'nothing invalid reaches the store');
  });

  it('registers an allowed container: 201 with its secret file names and mount, then lists and deletes it', async () => {
    const reply = await call<Record<string, unknown>>(socket, 'POST', '/v1/containers', { id: 'c1', service: 'api' });
    expect(reply.status).to.equal(201);
    expect(reply.body).to.include({ id: 'c1', service: 'api', mount: '/run/hush/mounts/c1' });
    expect(reply.body.secrets).to.deep.equal(['db']);
    expect(mounted).to.deep.equal(['c1:db'], 'the mount saw the secrets already held');

    const list = await call<{ id: string }[]>(socket, 'GET', '/v1/containers');
    expect(list.body.map((c) => c.id)).to.deep.equal(['c1']);
    // One container with what its mount can tell: this manager has no details (a real one: fuse-kernel.test.ts, agent-e2e).
    const one = await call<Record<string, unknown>>(socket, 'GET', '/v1/containers/c1');
    expect(one.status).to.equal(200);
    expect(one.body).to.deep.include({ id: 'c1', service: 'api', secrets: ['db'], mount: '/run/hush/mounts/c1', fuse: null, lookups: null });
    const unknown = await call<{ error: { code: string } }>(socket, 'GET', '/v1/containers/nope');
    expect(unknown.status).to.equal(404);
    expect(unknown.body.error.code).to.equal('not_found');

    expect((await call(socket, 'DELETE', '/v1/containers/c1')).status).to.equal(204);
    expect(link.stops).to.deep.equal(['c1']);
    expect(unmounted).to.deep.equal(['c1']);
    const again = await call<{ error: { code: string } }>(socket, 'DELETE', '/v1/containers/c1');
    expect(again.status).to.equal(404);
    expect(again.body.error.code).to.equal('not_found');
  });

  it('answers a duplicate id with 409, also while the first request is still waiting for its decision', async () => {
    expect((await post({ id: 'dup', service: 'api' })).status).to.equal(201);
    const dup = await post({ id: 'dup', service: 'api' });
    expect(dup.status).to.equal(409);
    expect(dup.body.error!.code).to.equal('conflict');

    // Concurrent: two requests for one new id; exactly one reaches the store and wins.
    const startsBefore = link.starts.length;
    const [a, b] = await Promise.all([post({ id: 'race', service: 'api' }), post({ id: 'race', service: 'api' })]);
    expect([a.status, b.status].sort()).to.deep.equal([201, 409]);
    expect(link.starts.length - startsBefore).to.equal(1);
  });

  it('passes the store refusal on as 403 with its reason, and registers nothing', async () => {
    link.answer = () => ({ request_id: '', allowed: false, reason: 'service "api" requires node.labels.zone==eu; this node has zone=us', revision: 3 });
    const reply = await post({ id: 'c2', service: 'api' });
    expect(reply.status).to.equal(403);
    expect(reply.body).to.deep.equal({ error: { code: 'forbidden', message: 'service "api" requires node.labels.zone==eu; this node has zone=us' } });
    expect((await call<unknown[]>(socket, 'GET', '/v1/containers')).body).to.deep.equal([]);
    expect(mounted).to.deep.equal([]);
  });

  it('answers 503 "store unreachable" when the session is down, and 504 when the store does not decide in time', async () => {
    link.answer = () => new HushError('unavailable', 'store unreachable: UNAVAILABLE: No connection established');
    const down = await post({ id: 'c3', service: 'api' });
    expect(down.status).to.equal(503);
    expect(down.body.error!.message).to.match(/^store unreachable: /);

    link.answer = () => 'never';
    const slow = await post({ id: 'c4', service: 'api' });
    expect(slow.status).to.equal(504);
    expect(slow.body.error!.code).to.equal('timeout');
    expect(link.stops, 'a start that timed out is withdrawn so the store keeps no grant for it').to.deep.equal(['c4']);
    expect((await call<unknown[]>(socket, 'GET', '/v1/containers')).body).to.deep.equal([]);
  });

  it('serves the debug view of names and versions, never values', async () => {
    await post({ id: 'c5', service: 'api' });
    const held = await call(socket, 'GET', '/v1/debug/held');
    expect(held.body).to.deep.equal({
      revision: 1,
      secrets: [{ name: 'db_password', version: 1 }],
      services: [{ service: 'api', grants: [{ source: 'db_password', target: 'db', uid: 0, gid: 0, mode: 0o400 }] }],
    });
    expect(held.text).to.not.include('"pw"');
  });

  it('checks the registering process: a pid that is not running, or whose start time differs, is refused', async () => {
    const stat22 = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]);
    const cases: [unknown, RegExp][] = [
      [{ id: 'p1', service: 'api', pid: 4_000_000 }, /field "pid": no process 4000000 is running/],
      [{ id: 'p2', service: 'api', pid: process.pid, pidStartTime: stat22(process.pid) + 1 }, /field "pidStartTime": process \d+ started at \d+, not \d+/],
      [{ id: 'p3', service: 'api', pidStartTime: 5 }, /field "pidStartTime" needs field "pid"/],
      [{ id: 'p4', service: 'api', pid: process.pid, pidStartTime: -1 }, /field "pidStartTime" must be >= 0/],
    ];
    for (const [body, message] of cases) {
      const reply = await post(body);
      expect(reply.status, JSON.stringify(body)).to.equal(400);
      expect(reply.body.error!.message).to.match(message);
    }
    expect(link.starts).to.deep.equal([], 'nothing invalid reaches the store');
    const ok = await post({ id: 'p5', service: 'api', pid: process.pid, pidStartTime: stat22(process.pid) });
    expect(ok.status).to.equal(201);
  });

  it('does not signal, and does not count as alive, a process that took the pid of a registered one that died', async () => {
    const children: ChildProcess[] = [];
    /** A shell that reports each SIGHUP it gets; `sh -c` runs as the spawned pid. */
    const hupListener = () => {
      const child = spawn('sh', ['-c', 'trap "echo HUP" HUP; echo ready; while :; do sleep 0.05; done'], { stdio: ['ignore', 'pipe', 'ignore'] });
      children.push(child);
      let out = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      return { child, out: () => out };
    };
    const waitFor = (what: () => boolean, label: string) => until(what, label, 5_000);
    const rotate = (version: number) =>
      cache.apply({ revision: cache.revision + 1, upserts: [{ name: 'db_password', version, data: Buffer.from(`pw${version}`), created_at_ms: Date.now() }], removals: [], services: [], removed_services: [] });
    try {
      // The positive control: a live registered process gets its reload signal.
      const live = hupListener();
      await waitFor(() => live.out().includes('ready'), 'the live listener to start');
      expect((await post({ id: 'live', service: 'api', pid: live.child.pid, reloadSignal: 'SIGHUP' })).status).to.equal(201);

      // The registering process: a grandchild, so that its parent shell (not this
      // process's event loop, which the agent's timers share) reaps it at once.
      const holder = spawn('sh', ['-c', 'sleep 600 & echo $!; wait; exec sleep 600'], { stdio: ['ignore', 'pipe', 'ignore'] });
      children.push(holder);
      const [line] = (await once(holder.stdout!, 'data')) as [Buffer];
      const pid = Number(line.toString().trim());
      expect((await post({ id: 'reused', service: 'api', pid, reloadSignal: 'SIGHUP' })).status).to.equal(201);

      // Start times count in 1/100 s: let one tick pass so the new process's start differs (a pid
      // comes back only after the whole pid space has been used, far longer than that, unless forced as here).
      await new Promise((r) => setTimeout(r, 50));
      // Kill it and hand its pid to a new process, all without yielding to the
      // event loop: the agent's liveness check gets no chance to see the gap.
      process.kill(pid, 'SIGKILL');
      for (let spins = 0; existsSync(`/proc/${pid}`); spins++) if (spins > 5_000_000) throw new Error(`pid ${pid} was not reaped`);
      let stranger: ReturnType<typeof hupListener> | undefined;
      for (let attempt = 0; attempt < 50 && !stranger; attempt++) {
        writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1)); // the next fork gets `pid`, unless another fork on the machine wins
        const candidate = hupListener();
        if (candidate.child.pid === pid) stranger = candidate;
      }
      expect(stranger, `no new process got pid ${pid} in 50 forks`).to.not.equal(undefined);
      await waitFor(() => stranger!.out().includes('ready'), 'the stranger to start');

      rotate(2);
      await waitFor(() => live.out().includes('HUP'), 'the live container to get its reload signal');
      await new Promise((r) => setTimeout(r, 200)); // both shells wake every 50 ms to run their traps
      expect(stranger!.out(), 'the process that took the pid got no signal').to.not.include('HUP');
      await waitFor(() => unmounted.includes('reused'), 'the container of the dead process to be stopped');
      expect(unmounted).to.not.include('live');
    } finally {
      for (const child of children) child.kill('SIGKILL');
    }
  });

  it('answers unknown routes with a JSON 404', async () => {
    const reply = await call<{ error: { code: string } }>(socket, 'GET', '/v1/nothing');
    expect(reply.status).to.equal(404);
    expect(reply.body.error.code).to.equal('not_found');
  });

  it('replaces a stale socket file and refuses one another process serves', async () => {
    const other = join(dir, 'other.sock');
    const app = createRuntimeApp({ containers: new ContainerRegistry({ link, cache, mounts: noMounts, log }), status: () => ({}) });

    // A live listener on the path: refused, and its socket left alone.
    const live = createServer();
    await new Promise<void>((r) => live.listen(other, r));
    const err = await rejection(listenOnUnixSocket(app, other));
    expect(err.message).to.match(/already served by a running process/);

    // A socket file left by a process killed with -9: replaced.
    await new Promise((r) => live.close(r));
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(other)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await once(child.stdout!, 'data');
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect((await stat(other)).isSocket()).to.equal(true);
    const replaced = await listenOnUnixSocket(app, other);
    expect((await call(other, 'GET', '/healthz')).status).to.equal(200);
    await new Promise((r) => replaced.close(r));
  });
});
