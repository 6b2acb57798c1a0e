/**
 * Secret hygiene after a workload (store process, agent process, CLI,
 * `hush run` with a child reading its secrets): every value used, raw, in
 * base64 and in hex, is searched for in the store's data directory and
 * HUSH_HOME, in the stdout/stderr of every process the test started (store
 * and agent at debug level), in the store's and agent's /proc/PID/environ
 * and cmdline, in the `hush run` child's argv and environment, in the
 * store's /metrics and the agent's views, in the audit records, in every
 * file the agent opened and every write it made (it runs under strace), and
 * in the heap snapshot and the whole memory of store and agent, while the
 * container runs and after it stopped. Each search has a positive control:
 * the same scan finds a planted value, or something known to be there.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, occurrencesInProcessMemory, startAgentProcess, type AgentProcess } from '../helpers/agent-process.js';
import { call, closeClients } from '../helpers/http.js';
import { hush, startHush, startStoreProcess, stopProcess, type Running, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

/** The forms a value could leak in: as given, as the API carries it, as a debug dump would print it. */
const encodings = (value: Buffer): [string, Buffer][] => [
  ['raw', value],
  ['base64', Buffer.from(value.toString('base64'))],
  ['hex', Buffer.from(value.toString('hex'))],
];

/** Every (value, encoding) found in `haystack`, as "name/encoding". */
function hits(haystack: Buffer, values: Map<string, Buffer>): string[] {
  const found: string[] = [];
  for (const [name, value] of values) for (const [form, bytes] of encodings(value)) if (haystack.includes(bytes)) found.push(`${name}/${form}`);
  return found;
}

/** Every regular file under `dir`, read (sockets and FUSE mountpoints skipped). */
async function readTree(dir: string, skip: (path: string) => boolean): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (skip(path)) continue;
    if (entry.isDirectory()) for (const [p, b] of await readTree(path, skip)) out.set(p, b);
    else if (entry.isFile()) out.set(path, await readFile(path));
  }
  return out;
}

const proc = async (pid: number, file: string) => readFile(`/proc/${pid}/${file}`);

/** Every descendant of `pid` (the child of `hush run` lives in its own pid namespace: its own `$$` is no host pid). */
async function descendants(pid: number): Promise<number[]> {
  const children = (await proc(pid, `task/${pid}/children`)).toString().trim().split(/\s+/).filter(Boolean).map(Number);
  return [...children, ...(await Promise.all(children.map(descendants))).flat()];
}
const coreLimit = async (pid: number) => /^Max core file size\s+(\S+)/m.exec((await proc(pid, 'limits')).toString())?.[1];

/**
 * A heap snapshot of `pid` (started with --heapsnapshot-signal=SIGUSR2 and
 * --diagnostic-dir=`dir`): V8 collects garbage first, so it holds what is
 * still referenced. JS strings are in it; the bytes of Buffers are not (they
 * live outside the V8 heap), which is what the /proc/PID/mem scan is for.
 * The file is removed once read: it may hold values.
 */
async function heapSnapshot(pid: number, dir: string): Promise<{ bytes: Buffer; strings: string[] }> {
  const before = new Set(await readdir(dir));
  process.kill(pid, 'SIGUSR2');
  let taken: { bytes: Buffer; strings: string[] } | undefined;
  const complete = async () => {
    const file = (await readdir(dir)).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (!file) return false;
    const bytes = await readFile(join(dir, file));
    // The JSON ends with the strings array: parsed only once it could be complete.
    if (!bytes.subarray(-2).equals(Buffer.from(']}'))) return false;
    try {
      taken = { bytes, strings: (JSON.parse(bytes.toString('utf8')) as { strings: string[] }).strings };
    } catch {
      return false; // still being written
    }
    await rm(join(dir, file));
    return true;
  };
  await until(complete, `a heap snapshot of ${pid}`, 60_000, 200);
  return taken!;
}

/** Hits in a heap snapshot: the file as written (JSON) and its strings decoded (a binary value is escaped in the JSON). */
function heapHits(snapshot: { bytes: Buffer; strings: string[] }, values: Map<string, Buffer>): string[] {
  const decoded = snapshot.strings.join('\n');
  return [...new Set([...hits(snapshot.bytes, values), ...hits(Buffer.from(decoded, 'latin1'), values), ...hits(Buffer.from(decoded, 'utf8'), values)])];
}

/**
 * Whether a value found in memory sits in a copy of a message as the store
 * encodes it (a WireSecretVersion: field 3, the data, tag 0x1a and its
 * length; then field 4, created_at_ms, tag 0x20 and a varint of this day's
 * time in ms). Either side is enough: a newer message received into the same
 * buffer may have overwritten the start of an older one.
 */
function inStoreMessage(before: Buffer, value: Buffer, after: Buffer): boolean {
  if (before.subarray(-2).equals(Buffer.from([0x1a, value.length]))) return true;
  if (after[0] !== 0x20) return false;
  let ms = 0;
  for (let i = 1, scale = 1; i < after.length; i++, scale *= 128) {
    ms += (after[i]! & 0x7f) * scale;
    if (after[i]! < 0x80) return Math.abs(ms - Date.now()) < 86_400_000;
  }
  return false;
}

interface Traced {
  syscall: string;
  /** The line with strace's \xNN escapes decoded: buffers and paths as the bytes they were (latin1). */
  bytes: Buffer;
  text: string;
}

/** strace -f -yy -xx output, one entry per syscall line. */
function parseTrace(trace: string): Traced[] {
  return trace
    .split('\n')
    .map((line) => {
      const text = line.replace(/\\x([0-9a-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
      return { syscall: /^\d+\s+(\w+)\(/.exec(line)?.[1] ?? '', bytes: Buffer.from(text, 'latin1'), text };
    })
    .filter((t) => t.syscall !== '');
}

describe('secret hygiene: no value in files, logs, environments or argv (integration, real FUSE)', function () {
  this.timeout(180_000);
  let dir: string;
  let socket: string;
  let store: StoreProcess | undefined;
  let agent: AgentProcess | undefined;
  let holder: Running | undefined;
  let agentPid = 0;
  let cli: (args: string[], input?: Buffer) => string;
  const probeName = `probe_${randomBytes(8).toString('hex')}`;
  const nodeName = `hygiene-${randomBytes(6).toString('hex')}`;
  /** stdout + stderr of every CLI run, by command. */
  const cliOutput = new Map<string, Buffer>();
  // Random, so a hit cannot be a coincidence.
  const values = new Map<string, Buffer>([
    ['cli_stdin', Buffer.from(`cli-stdin-${randomBytes(12).toString('hex')}`)],
    ['cli_rotated', Buffer.from(`cli-rotated-${randomBytes(12).toString('hex')}`)],
    ['rest_binary', Buffer.concat([Buffer.from('rest-'), randomBytes(24)])],
    ['docker_api', Buffer.from(`docker-api-${randomBytes(12).toString('hex')}`)],
  ]);

  before(async () => {
    dir = await tempDir('hush-hygiene-');
    socket = join(dir, 'admin.sock');
    for (const d of ['heap-store', 'heap-agent']) await mkdir(join(dir, d), { mode: 0o700 });
    const heapArgs = (d: string) => ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${join(dir, d)}`];
    const port = await freePort();
    store = await startStoreProcess({ data: join(dir, 'data'), socket, home: dir, logLevel: 'debug', nodeArgs: heapArgs('heap-store'), extraArgs: ['--listen', `127.0.0.1:${port}`, '--admin', ''] });
    const env = { HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir };
    cli = (args: string[], input?: Buffer) => {
      const r = hush(args, { env, input });
      cliOutput.set(args.join(' '), Buffer.from(r.stdout + r.stderr));
      if (r.status !== 0) throw new Error(`hush ${args.join(' ')}: ${r.stderr}`);
      return r.stdout.trim();
    };
    cli(['secret', 'create', 'cli_stdin', '-'], values.get('cli_stdin'));
    cli(['secret', 'create', 'cli_rotated', '-'], Buffer.from('first'));
    cli(['secret', 'rotate', 'cli_rotated', '-'], values.get('cli_rotated'));
    expect((await call(socket, 'POST', '/v1/secrets', { name: 'rest_binary', data: values.get('rest_binary')!.toString('base64') })).status).to.equal(201);
    expect((await call(socket, 'POST', '/secrets/create', { Name: 'docker_api', Data: values.get('docker_api')!.toString('base64') })).status).to.equal(201);
    // Its name is random and held by store and agent alike: the positive control of the memory scans.
    cli(['secret', 'create', probeName, '-'], Buffer.from('probe'));
    const grants = [...values.keys(), probeName].flatMap((name) => ['--secret', name]);
    cli(['service', 'create', 'app', ...grants]);
    cli(['secret', 'ls']);
    cli(['secret', 'inspect', 'cli_rotated']);

    agent = await startAgentProcess({
      store: `127.0.0.1:${port}`,
      token: cli(['join-token']),
      name: nodeName,
      socket: join(dir, 'agent.sock'),
      // Every file syscall and every write, with its fd's path (-yy) and its whole buffer in hex (-xx, -s).
      strace: { file: join(dir, 'agent.strace'), syscalls: ['%file', 'write', 'writev', 'pwrite64', 'pwritev', 'pwritev2', 'sendto', 'sendmsg', 'sendmmsg'], flags: ['-yy', '-xx', '-s', '8192'] },
      nodeArgs: heapArgs('heap-agent'),
    });
    agentPid = await agent.pid();
    // The child proves it read every value (hashes, never the bytes), then waits so its /proc can be read.
    const script = `${[...values.keys()].map((n) => `sha256sum /run/secrets/${n}`).join('; ')}; echo "pid $$"; exec sleep 120`;
    holder = startHush(['run', '--service', 'app', '--', 'sh', '-c', script], { ...env, HUSH_AGENT_SOCKET: agent.socket });
    await until(() => holder!.stdout().toString().includes('pid '), 'the hush run child to read its secrets', 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${holder!.stderr()}`);
    });
  });
  after(async () => {
    closeClients();
    if (holder && holder.child.exitCode === null) {
      holder.child.kill('SIGTERM');
      await holder.finished;
    }
    if (agent) await agent.stop('SIGTERM');
    if (store) await stopProcess(store, 'SIGKILL');
    await removeDir(dir);
  });

  it('finds planted values in every encoding (the scan works)', () => {
    const planted = values.get('rest_binary')!;
    for (const [form, bytes] of encodings(planted)) expect(hits(Buffer.concat([Buffer.from('log line '), bytes, Buffer.from('\n')]), values), form).to.include(`rest_binary/${form}`);
    expect(hits(Buffer.from('nothing here'), values)).to.deep.equal([]);
  });

  it('the hush run child read every value through its mount', () => {
    const printed = holder!.stdout().toString();
    for (const [name, value] of values) expect(printed, name).to.include(`${createHash('sha256').update(value).digest('hex')}  /run/secrets/${name}`);
  });

  it('no value in the data directory or HUSH_HOME; a value planted there is found', async () => {
    const files = await readTree(dir, (path) => path.endsWith('.sock') || path.endsWith('.mounts'));
    expect([...files.keys()].some((p) => p.includes('/data/wal-')), 'the scan reads the log').to.equal(true);
    const found = [...files].flatMap(([path, bytes]) => hits(bytes, values).map((h) => `${path}: ${h}`));
    expect(found).to.deep.equal([]);
    await writeFile(join(dir, 'data', 'planted'), values.get('cli_stdin')!);
    const again = await readTree(dir, (path) => path.endsWith('.sock') || path.endsWith('.mounts'));
    expect(hits(again.get(join(dir, 'data', 'planted'))!, values)).to.deep.equal(['cli_stdin/raw']);
  });

  it('no value in the output of the store, the agent (debug level), the CLI or hush run', () => {
    const outputs = new Map<string, Buffer>([
      ['store', Buffer.from(store!.output())],
      ['agent', Buffer.from(agent!.output())],
      ['hush run', Buffer.concat([holder!.stdout(), Buffer.from(holder!.stderr())])],
      ...[...cliOutput].map(([args, out]) => [`hush ${args}`, out] as [string, Buffer]),
    ]);
    // The logs were captured at debug level: the agent logged its session, the store its start.
    expect(store!.output()).to.include('store ready');
    expect(agent!.output()).to.match(/"level":20/);
    const found = [...outputs].flatMap(([who, out]) => hits(out, values).map((h) => `${who}: ${h}`));
    expect(found).to.deep.equal([]);
  });

  it('no value in the store’s /metrics, nor in the agent’s status, containers and held views', async () => {
    const metrics = await call(socket, 'GET', '/metrics');
    expect(metrics.status).to.equal(200);
    // The real thing, after the workload: the store counted its pushes to the node and the admin requests.
    expect(metrics.text).to.match(/^hush_node_pushed_secret_versions_total [1-9]/m);
    expect(metrics.text).to.match(/^hush_http_request_duration_seconds_count\{[^}]*route="\/v1\/secrets"[^}]*\} [1-9]/m);
    const views = new Map<string, string>([['store /metrics', metrics.text]]);
    // The agent serves no /metrics: its status and views are what it tells about itself.
    for (const path of ['/v1/status', '/v1/containers', '/v1/debug/held']) {
      const reply = await call(agent!.socket, 'GET', path);
      expect(reply.status, path).to.equal(200);
      views.set(`agent ${path}`, reply.text);
    }
    expect(views.get('agent /v1/debug/held'), 'the agent holds the granted secrets').to.include(probeName);
    expect(views.get('agent /v1/containers'), 'the hush run container').to.include('"service":"app"');
    const found = [...views].flatMap(([where, text]) => hits(Buffer.from(text), values).map((h) => `${where}: ${h}`));
    expect(found).to.deep.equal([]);
  });

  it('no value in the audit records: the log of changes (json) and who read what (--reads)', async () => {
    const audit = cli(['audit', '--format', 'json']);
    let reads = '';
    // Reads reach the store with the agent's next report.
    await until(() => {
      reads = cli(['audit', '--reads', '--format', 'json']);
      return [...values.keys()].every((name) => reads.includes(`"${name}"`));
    }, 'the reads of every value in the audit', 30_000, 200);
    // Positive controls: every secret entered is recorded as created, by name.
    for (const name of values.keys()) expect(audit, `audit of ${name}`).to.include(name);
    expect(cli(['audit', '--reads'])).to.include(nodeName);
    const found = [
      ...hits(Buffer.from(audit), values).map((h) => `audit: ${h}`),
      ...hits(Buffer.from(reads), values).map((h) => `audit --reads: ${h}`),
      ...hits(Buffer.from(cli(['audit', '--reads'])), values).map((h) => `audit --reads (table): ${h}`),
    ];
    expect(found).to.deep.equal([]);
  });

  it('the agent opened no file for writing but /dev/fuse and /dev/null, and wrote no value except in FUSE replies (strace)', async () => {
    const calls = parseTrace(await readFile(join(dir, 'agent.strace'), 'latin1'));
    const opens = calls.filter((c) => /^(open|openat|openat2|creat)$/.test(c.syscall) && / = \d+/.test(c.text));
    const writable = opens.filter((c) => c.syscall === 'creat' || /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND/.test(c.text));
    const paths = [...new Set(writable.map((c) => /^\d+\s+\w+\((?:[^,]*,\s*)?"([^"]*)"/.exec(c.text)?.[1] ?? c.text))].sort();
    console.log(`      files the agent opened for writing: ${paths.join(', ')}`);
    // Positive control: the trace holds the agent's reads of its own files (read-only opens), by path.
    expect(opens.some((c) => c.text.includes('/dist/cli/main.js')), 'the trace records opens by path').to.equal(true);
    // /dev/fuse: each mount's connection (O_RDWR). /dev/null: stdin and stdout of the mount(8) the agent
    // spawns, opened in the forked child (spawn's 'ignore'). Nothing else, and no regular file.
    expect(paths, 'every file opened for writing').to.include('/dev/fuse');
    expect(paths.filter((p) => p !== '/dev/fuse' && p !== '/dev/null')).to.deep.equal([]);

    const writes = calls.filter((c) => /^(write|writev|pwrite64|pwritev2?|sendto|sendmsg|sendmmsg)$/.test(c.syscall));
    const fuse = writes.filter((c) => c.text.includes('</dev/fuse'));
    console.log(`      ${writes.length} writes traced (${fuse.length} to /dev/fuse), ${opens.length} opens`);
    // Positive control: the FUSE replies carry the values (that is how the child read them), and the scan sees each one.
    const inReplies = new Set(fuse.flatMap((c) => hits(c.bytes, values)));
    for (const name of values.keys()) expect([...inReplies], `${name} in a FUSE reply`).to.include(`${name}/raw`);
    const found = writes.filter((c) => !c.text.includes('</dev/fuse')).flatMap((c) => hits(c.bytes, values).map((h) => `${h}: ${c.text.slice(0, 160)}`));
    expect(found).to.deep.equal([]);
  });

  it('no value in the environ or cmdline of the store, the agent, hush run or its child; core limits recorded', async () => {
    let childPid = 0;
    for (const pid of await descendants(holder!.child.pid!)) if ((await proc(pid, 'cmdline')).toString().startsWith('sleep\0')) childPid = pid;
    expect(childPid, 'the host pid of the hush run child').to.be.above(0);
    const pids: [string, number][] = [
      ['store', store!.child.pid!],
      ['agent', agentPid],
      ['hush run', holder!.child.pid!],
      ['hush run child', childPid],
    ];
    const found: string[] = [];
    for (const [who, pid] of pids) {
      const environ = await proc(pid, 'environ');
      const cmdline = await proc(pid, 'cmdline');
      // Positive control: these are the real files (every process here has a PATH; each command line is as started).
      expect(environ.toString(), `${who} environ`).to.include('PATH=');
      expect(cmdline.length, `${who} cmdline`).to.be.above(0);
      for (const h of hits(environ, values)) found.push(`${who} environ: ${h}`);
      for (const h of hits(cmdline, values)) found.push(`${who} cmdline: ${h}`);
    }
    expect((await proc(childPid, 'cmdline')).toString().split('\0')[0]).to.equal('sleep');
    expect(found).to.deep.equal([]);
    // Core dumps: hush sets no limit of its own (Node has no setrlimit/prctl); the processes keep the limit they were started with.
    const own = await coreLimit(process.pid);
    for (const [who, pid] of pids) expect(await coreLimit(pid), `${who}: Max core file size`).to.equal(own);
    console.log(`      Max core file size of store, agent, hush run and its child: ${own} (inherited; hush sets none)`);
  });
  /**
   * Hits in a heap snapshot and in the whole memory of the process, with the
   * positive control (a random name it holds) found in both. A raw hit in
   * memory is "framed" when it sits in a copy of a message as the store
   * encoded it, "bare" otherwise: a value on its own, as hush code holds one.
   */
  const memoryHits = async (who: string, pid: number, heapDir: string, control: Buffer) => {
    const needles = [...values].flatMap(([name, value]) => encodings(value).map(([form, bytes]) => ({ label: `${name}/${form}`, raw: value, bytes })));
    // Memory first: the snapshot collects garbage, which could overwrite a leftover copy before the scan sees it.
    const occurrences = await occurrencesInProcessMemory(pid, [control, ...needles.map((n) => n.bytes)], 16);
    const snapshot = await heapSnapshot(pid, join(dir, heapDir));
    expect(heapHits(snapshot, new Map([['control', control]])), `${who}: the control in its heap snapshot`).to.include('control/raw');
    expect(occurrences.some((o) => o.needle.equals(control)), `${who}: the control in its memory`).to.equal(true);
    const memory = { framed: [] as string[], bare: [] as string[], encoded: [] as string[] };
    for (const o of occurrences) {
      const needle = needles.find((n) => n.bytes.equals(o.needle));
      if (!needle) continue;
      if (!needle.bytes.equals(needle.raw)) memory.encoded.push(needle.label);
      else if (inStoreMessage(o.before, needle.raw, o.after)) memory.framed.push(needle.label);
      else memory.bare.push(`${needle.label} between ${o.before.toString('hex')} and ${o.after.toString('hex')} in ${o.region.replace(/\s+/g, ' ')}`);
    }
    const heap = heapHits(snapshot, values);
    // Counts per value; where each bare one was is in the assertion's message.
    const list = (l: string[]) => {
      const per = new Map<string, number>();
      for (const label of l) per.set(label.split(' ')[0]!, (per.get(label.split(' ')[0]!) ?? 0) + 1);
      return `${l.length}${l.length ? ` [${[...per].map(([label, n]) => `${label} ×${n}`).join(', ')}]` : ''}`;
    };
    console.log(
      `      ${who}: heap snapshot (${(snapshot.bytes.length / 1e6).toFixed(1)} MB) ${list(heap)}; whole memory: bare ${list(memory.bare)}, in a store message ${list(memory.framed)}, encoded ${list(memory.encoded)}`,
    );
    return { heap, memory };
  };

  it('heap and memory of store and agent while the container runs: the agent holds no value in plaintext', async () => {
    const storeHits = await memoryHits('store', store!.child.pid!, 'heap-store', Buffer.from(probeName));
    const agentHits = await memoryHits('agent', agentPid, 'heap-agent', Buffer.from(probeName));
    // The agent keeps values sealed: a FUSE read opens one into a buffer that is zeroed once the reply is written.
    // What remains are copies of the store's message in Node's TLS and HTTP/2 buffers (see docs/reliability.md).
    expect(agentHits.heap, 'agent heap snapshot').to.deep.equal([]);
    expect(agentHits.memory.bare, 'agent memory: values on their own').to.deep.equal([]);
    expect(agentHits.memory.encoded, 'agent memory: values in base64 or hex').to.deep.equal([]);
    // The store's live JS heap holds no value either; its memory is reported, not asserted (values in use).
    expect(storeHits.heap, 'store heap snapshot').to.deep.equal([]);
  });

  it('the agent after the last container of the service stopped: nothing held, no value in its heap or memory', async () => {
    holder!.child.kill('SIGTERM');
    await holder!.finished;
    const held = async () => (await call<{ secrets: { name: string }[]; services: { service: string }[] }>(agent!.socket, 'GET', '/v1/debug/held')).body;
    await until(async () => (await held()).secrets.length === 0, 'the agent to drop the secrets of a service with no container', 30_000, 100);
    expect((await held()).services).to.deep.equal([]);
    // Its name is the control now: the agent holds no secret name any more.
    const agentHits = await memoryHits('agent, container stopped', agentPid, 'heap-agent', Buffer.from(nodeName));
    expect(agentHits.heap, 'agent heap snapshot').to.deep.equal([]);
    expect(agentHits.memory.bare, 'agent memory: values on their own').to.deep.equal([]);
    expect(agentHits.memory.encoded, 'agent memory: values in base64 or hex').to.deep.equal([]);
  });
});
