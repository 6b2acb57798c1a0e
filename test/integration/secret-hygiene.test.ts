/**
 * Secret hygiene after a workload (store process, agent process, CLI,
 * `hush run` with a child reading its secrets): every value used, raw, in
 * base64 and in hex, is searched for in the store's data directory and
 * HUSH_HOME, in the stdout/stderr of every process the test started (store
 * and agent at debug level), in the store's and agent's /proc/PID/environ
 * and cmdline, and in the `hush run` child's argv and environment. Each
 * search has a positive control: the same scan finds a planted value.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, startAgentProcess, type AgentProcess } from '../helpers/agent-process.js';
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

describe('secret hygiene: no value in files, logs, environments or argv (integration, real FUSE)', function () {
  this.timeout(180_000);
  let dir: string;
  let socket: string;
  let store: StoreProcess | undefined;
  let agent: AgentProcess | undefined;
  let holder: Running | undefined;
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
    const port = await freePort();
    store = await startStoreProcess({ data: join(dir, 'data'), socket, home: dir, logLevel: 'debug', extraArgs: ['--listen', `127.0.0.1:${port}`, '--admin', ''] });
    const env = { HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir };
    const cli = (args: string[], input?: Buffer) => {
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
    const grants = [...values.keys()].flatMap((name) => ['--secret', name]);
    cli(['service', 'create', 'app', ...grants]);
    cli(['secret', 'ls']);
    cli(['secret', 'inspect', 'cli_rotated']);

    agent = await startAgentProcess({ store: `127.0.0.1:${port}`, token: cli(['join-token']), name: 'hygiene-node', socket: join(dir, 'agent.sock') });
    // The child proves it read every value (hashes, never the bytes), then waits so its /proc can be read.
    const script = `${[...values.keys()].map((n) => `sha256sum /run/secrets/${n}`).join('; ')}; echo "pid $$"; exec sleep 60`;
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

  it('no value in the environ or cmdline of the store, the agent, hush run or its child; core limits recorded', async () => {
    let childPid = 0;
    for (const pid of await descendants(holder!.child.pid!)) if ((await proc(pid, 'cmdline')).toString().startsWith('sleep\0')) childPid = pid;
    expect(childPid, 'the host pid of the hush run child').to.be.above(0);
    const pids: [string, number][] = [
      ['store', store!.child.pid!],
      ['agent', await agent!.pid()],
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
});
