/**
 * What only the kernel implementation has: one node per secret version,
 * cached reads that never reach the agent, the caller of each version's first
 * lookup and the kernel's release of old versions, names that vanish the
 * moment a grant goes, and the fallback for kernels without no_open. Every
 * read is done by a child process; this process serves the mounts.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { cleanStaleMounts, mountSecrets, type MountOptions, type SecretsMount } from '../../src/tmpfs-mount/index.js';
import { MemorySource } from '../helpers/memory-source.js';
import { until } from '../helpers/until.js';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function sh(file: string, args: string[]): Promise<Result> {
  return new Promise((done) => {
    execFile(file, args, { encoding: 'utf8', timeout: 10_000 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function cat(path: string): Promise<string> {
  const r = await sh('cat', [path]);
  if (r.code !== 0) throw new Error(`cat ${path}: ${r.stderr}`);
  return r.stdout;
}

const INDEX = pathToFileURL(resolve(import.meta.dirname, '../../src/tmpfs-mount/index.ts')).href;

/** Runs `code` (an ES module) in a Node child, the mountpoint in $MP: that process serves the mount, this one reads. */
function serveInChild(code: string, mp: string, stdin: 'ignore' | 'pipe'): { server: ReturnType<typeof spawn>; output: () => string } {
  const server = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: resolve(import.meta.dirname, '../..'),
    env: { ...process.env, MP: mp },
    stdio: [stdin, 'pipe', 'inherit'],
  });
  let out = '';
  server.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return { server, output: () => out };
}

const inode = async (path: string): Promise<number> => Number((await sh('stat', ['-c', '%i', path])).stdout.trim());

describe('tmpfs-mount (kernel): node per version, lookups, at-once removal', function () {
  this.timeout(60_000);
  let dir: string;
  let seq = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hush-fusek-'));
    await chmod(dir, 0o755);
  });

  after(async () => {
    if (!dir) return;
    await cleanStaleMounts(dir);
    await rm(dir, { recursive: true, force: true });
  });

  async function withMount(src: MemorySource, fn: (mnt: SecretsMount) => Promise<void>, options: MountOptions = {}): Promise<void> {
    const mnt = await mountSecrets(join(dir, `k${++seq}`), src, { implementation: 'kernel', ...options });
    try {
      expect(mnt.implementation).to.equal('kernel');
      await fn(mnt);
    } finally {
      await mnt.unmount();
    }
  }

  it('gives each version its own inode and keeps it while the version is current', async () => {
    const src = new MemorySource();
    src.set('a', 'one');
    src.set('b', 'bee');
    await withMount(src, async (mnt) => {
      const a = join(mnt.mountpoint, 'a');
      const first = await inode(a);
      expect(await inode(a)).to.equal(first);
      expect(await inode(join(mnt.mountpoint, 'b'))).to.not.equal(first);
      src.set('a', 'two'); // same size, new version
      const second = await inode(a);
      expect(second).to.not.equal(first);
      expect(await cat(a)).to.equal('two');
      src.set('a', 'two', { mode: 0o400 }); // same bytes, new owner/mode: a new node too
      expect(await inode(a)).to.not.equal(second);
      expect((await sh('stat', ['-c', '%a', a])).stdout.trim()).to.equal('400');
    });
  });

  it('answers cached reads in the kernel: repeated opens and reads send the agent no request', async () => {
    const src = new MemorySource();
    src.set('s', 'x'.repeat(1024));
    await withMount(src, async (mnt) => {
      const file = join(mnt.mountpoint, 's');
      await cat(file); // lookup + the one read that fills the page cache
      const before = mnt.stats();
      const started = Date.now();
      const loop = await sh('sh', ['-c', `for i in $(seq 200); do cat ${file} > /dev/null || exit 1; done`]);
      const seconds = (Date.now() - started) / 1000;
      expect(loop.code, loop.stderr).to.equal(0);
      const after = mnt.stats();
      // The only thing that may reach the agent: the name's LOOKUP once its 1 s entry timeout lapses (kernel-options.ts).
      expect(after.read - before.read, 'READs during 200 cached open+read+close').to.equal(0);
      expect(after.requests - before.requests - (after.lookup - before.lookup), 'requests other than the lookups of an expired name').to.equal(0);
      expect(after.lookup - before.lookup, `lookups in ${seconds.toFixed(1)} s`).to.be.at.most(Math.ceil(seconds) + 1);
    });
  });

  it('records the first lookup of each version with the caller the kernel names, and the release of old versions', async () => {
    const src = new MemorySource();
    src.set('db', 'v1-bytes', { uid: 1000, gid: 1000, mode: 0o400 });
    await withMount(src, async (mnt) => {
      const file = join(mnt.mountpoint, 'db');
      // A lookup is an access: `stat` by uid 1000 (pid known: setpriv execs stat in place).
      const child = spawn('setpriv', ['--reuid', '1000', '--regid', '1001', '--clear-groups', 'stat', '-c', '%s', file], { stdio: ['ignore', 'pipe', 'pipe'] });
      const [code] = await once(child, 'exit');
      expect(code).to.equal(0);
      await until(() => (mnt.lookups() ?? []).length === 1, 'the lookup record');
      const [first] = mnt.lookups()!;
      expect(first).to.deep.include({ file: 'db', secret: 'db', version: 1, releasedAt: null });
      expect(first!.firstLookup).to.deep.include({ pid: child.pid, uid: 1000, gid: 1001 });
      expect(Date.parse(first!.firstLookup.at)).to.be.closeTo(Date.now(), 10_000);

      // Further lookups of the same version add nothing.
      await cat(file);
      await sh('ls', ['-l', mnt.mountpoint]);
      expect(mnt.lookups()).to.have.length(1);

      src.set('db', 'v2-bytes', { uid: 1000, gid: 1000, mode: 0o400 });
      expect(await cat(file)).to.equal('v2-bytes');
      // Nothing holds version 1 any more: the kernel forgets its node, and the record says when.
      await until(() => mnt.lookups()![0]!.releasedAt !== null, 'release of version 1');
      await until(() => mnt.lookups()!.length === 2, 'the lookup of version 2');
      expect(mnt.lookups()!.map((r) => [r.version, r.releasedAt === null])).to.deep.equal([
        [1, false],
        [2, true],
      ]);
      // Never a value in the records.
      expect(JSON.stringify(mnt.lookups())).to.not.match(/v[12]-bytes/);
    });
  });

  it('fills a new version into the page cache where the container read the one it replaces: its first read is one LOOKUP, no READ', async () => {
    const src = new MemorySource();
    const large = (c: string): string => c.repeat(500 * 1024);
    src.set('used', 'u'.repeat(1024));
    src.set('large', large('1'));
    src.set('untouched', 'n'.repeat(1024));
    await withMount(src, async (mnt) => {
      const path = (name: string): string => join(mnt.mountpoint, name);
      await cat(path('used'));
      expect(await cat(path('large'))).to.equal(large('1'));
      src.set('used', 'U'.repeat(1024));
      src.set('large', large('2'));
      src.set('untouched', 'N'.repeat(1024));
      await mnt.settled();
      const before = mnt.stats();
      expect(await cat(path('used'))).to.equal('U'.repeat(1024));
      expect(await cat(path('large'))).to.equal(large('2'));
      const filled = mnt.stats();
      expect(filled.read - before.read, 'READs for the first reads of the filled versions (1 KiB and 500 KiB)').to.equal(0);
      expect(filled.lookup - before.lookup, 'each open still asks for the name').to.be.at.least(2);
      // A file the container never read gets no plaintext in its page cache: its first read asks.
      expect(await cat(path('untouched'))).to.equal('N'.repeat(1024));
      expect(mnt.stats().read - filled.read).to.equal(1);
    });
  });

  it('keeps prefill names out of listings and access records, answers a guessed one with ENOENT, and stops filling a file no longer read', async () => {
    const src = new MemorySource();
    src.set('db', 'v1');
    await withMount(src, async (mnt) => {
      const file = join(mnt.mountpoint, 'db');
      await cat(file);
      src.set('db', 'v2');
      await mnt.settled();
      // The agent's own lookup that filled version 2 is no access: only version 1's record.
      await until(() => mnt.lookups()!.length === 1, 'the lookup record of version 1');
      await new Promise((r) => setTimeout(r, 200));
      expect(mnt.lookups()!.map((r) => r.version)).to.deep.equal([1]);
      expect((await sh('ls', ['-a', mnt.mountpoint])).stdout.split('\n').filter(Boolean)).to.deep.equal(['.', '..', 'db']);
      const guess = await sh('stat', [join(mnt.mountpoint, `.hush-fill-${'0'.repeat(32)}-3`)]);
      expect(guess.stderr).to.match(/No such file/);
      // The container's first read of version 2 is recorded with its pid.
      const child = spawn('cat', [file], { stdio: 'ignore' });
      const [code] = await once(child, 'exit');
      expect(code).to.equal(0);
      await until(() => mnt.lookups()!.length === 2, 'the lookup record of version 2');
      expect(mnt.lookups()![1]).to.deep.include({ version: 2 });
      expect(mnt.lookups()![1]!.firstLookup.pid).to.equal(child.pid);

      // Version 3 is filled (version 2 was read); version 4 is not (nobody read version 3).
      src.set('db', 'v3');
      await mnt.settled();
      src.set('db', 'v4');
      await mnt.settled();
      const before = mnt.stats();
      expect(await cat(file)).to.equal('v4');
      expect(mnt.stats().read - before.read).to.equal(1);
      // Nothing holds versions 1-3 any more, the filled but unread version 3 included: the kernel forgot them.
      await until(() => mnt.stats().retained === 0, 'the kernel releasing every old version');
    });
  });

  it('makes a removed file vanish at once (ENOENT), also for a process that had it cached, and a new one appear at once', async () => {
    const src = new MemorySource();
    src.set('keep', 'k');
    src.set('gone', 'g');
    await withMount(src, async (mnt) => {
      const gone = join(mnt.mountpoint, 'gone');
      // A long-lived process reads the file (its name and pages are cached for a minute), then tries again when told.
      const child = spawn('sh', ['-c', `cat ${gone}; echo; read line; cat ${gone}`], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      await until(() => out === 'g\n', 'the first read');
      src.remove('gone');
      // No waiting: the name is gone before remove() returns.
      const stat = await sh('stat', [gone]);
      expect(stat.stderr).to.match(/No such file or directory/);
      const exited = once(child, 'exit');
      child.stdin!.end('again\n');
      const [code] = await exited;
      expect(code).to.not.equal(0);
      expect(err).to.match(/No such file or directory/);
      expect((await sh('ls', [mnt.mountpoint])).stdout.split('\n').filter(Boolean)).to.deep.equal(['keep']);

      src.set('fresh', 'f');
      expect((await sh('ls', [mnt.mountpoint])).stdout.split('\n').filter(Boolean)).to.deep.equal(['fresh', 'keep']);
      expect(await cat(join(mnt.mountpoint, 'fresh'))).to.equal('f');
    });
  });

  it('empties the mount when it is taken down, also where it is still bound (a stopped container)', async () => {
    const src = new MemorySource();
    src.set('s', 'secret-bytes');
    const bind = join(dir, `bind${++seq}`);
    await mkdir(bind);
    const mnt = await mountSecrets(join(dir, `k${++seq}`), src, { implementation: 'kernel' });
    let bound = false;
    try {
      const r = await sh('mount', ['--bind', mnt.mountpoint, bind]);
      expect(r.code, r.stderr).to.equal(0);
      bound = true;
      expect(await cat(join(bind, 's'))).to.equal('secret-bytes');
      await mnt.unmount();
      // The bind keeps the filesystem alive, but it holds nothing any more.
      expect((await sh('cat', [join(bind, 's')])).stderr).to.match(/No such file or directory/);
      expect((await sh('ls', ['-A', bind])).stdout).to.equal('');
    } finally {
      await mnt.unmount();
      if (bound) await sh('umount', [bind]);
    }
  });

  it('without no_open (a kernel that lacks it) opens reach the agent, and a held fd still keeps its version', async () => {
    const src = new MemorySource();
    src.set('s', 'first');
    await withMount(
      src,
      async (mnt) => {
        const file = join(mnt.mountpoint, 's');
        const holder = spawn('sh', ['-c', `exec 3< ${file}; echo opened; read line; cat <&3`], { stdio: ['pipe', 'pipe', 'inherit'] });
        let out = '';
        holder.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        await until(() => out === 'opened\n', 'the holder to open');
        expect(mnt.stats().open).to.be.greaterThan(0);
        src.set('s', 'second');
        expect(await cat(file)).to.equal('second');
        const exited = once(holder, 'exit');
        holder.stdin!.end('go\n');
        await exited;
        expect(out).to.equal('opened\nfirst');
        // The kernel sends RELEASE after close returns, in the background: wait for every open's.
        await until(() => mnt.stats().release === mnt.stats().open, 'a release for every open so far');
        const before = mnt.stats();
        await cat(file);
        await until(() => mnt.stats().release - before.release === 1, 'the release of the new open');
        const after = mnt.stats();
        expect(after.open - before.open, 'opens that reached the agent').to.equal(1);
        expect(after.read - before.read, 'reads (the pages stay cached: keep_cache)').to.equal(0);
      },
      { noOpen: false },
    );
  });

  it('lets a process that filled versions exit by itself, and its lookup child end with it', async () => {
    const mp = join(dir, `k${++seq}`);
    const code = `
      import { execFileSync } from 'node:child_process';
      import { mountSecrets } from ${JSON.stringify(INDEX)};
      import { MemorySource } from ${JSON.stringify(pathToFileURL(resolve(import.meta.dirname, '../helpers/memory-source.ts')).href)};
      const src = new MemorySource();
      src.set('x', 'one');
      const m = await mountSecrets(process.env.MP, src);
      execFileSync('cat', [process.env.MP + '/x']); // another process reads: this one only serves
      src.set('x', 'two');
      await m.settled();
      const children = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)]).toString();
      const sh = children.split('\\n').find((l) => l.includes('read -r p'));
      process.stdout.write(JSON.stringify({ reads: m.stats().read, sh: sh && Number(sh.trim().split(' ')[0]) }) + '\\n');
      await m.unmount();
    `;
    const { server, output } = serveInChild(code, mp, 'ignore');
    try {
      const [exitCode] = await once(server, 'exit');
      expect(exitCode, 'exits without being told to').to.equal(0);
      const { reads, sh: shPid } = JSON.parse(output()) as { reads: number; sh?: number };
      expect(reads, 'one READ: version 1; version 2 was filled').to.equal(1);
      expect(shPid, 'the lookup child ran').to.be.a('number');
      await until(() => !existsSync(`/proc/${shPid}`), 'the lookup child to end with the agent');
    } finally {
      if (server.exitCode === null) server.kill('SIGKILL');
    }
  });

  it('lets the serving process exit although a reader still holds its unmounted mount (its connection is aborted)', async () => {
    // The serving thread blocks in read(2); Node joins its threads at exit, so without the abort the
    // process would wait for the holder below for as long as it holds the mount.
    const mp = join(dir, `k${++seq}`);
    const code = `
      import { mountSecrets } from ${JSON.stringify(INDEX)};
      const bytes = Buffer.from('held\\n');
      const file = { name: 'x', uid: 0, gid: 0, mode: 0o444, mtime: new Date(), size: bytes.length, source: 'x', version: 1,
        open: () => ({ size: bytes.length, read: (p, l) => Buffer.from(bytes.subarray(p, p + l)) }) };
      const m = await mountSecrets(process.env.MP, { list: () => [file], lookup: (n) => (n === 'x' ? file : undefined), onChange: () => () => {} });
      process.stdout.write('mounted\\n');
      process.stdin.once('data', async () => { await m.unmount(); process.stdout.write('unmounted\\n'); process.stdin.destroy(); });
    `;
    const { server, output } = serveInChild(code, mp, 'pipe');
    let holder: ReturnType<typeof spawn> | undefined;
    try {
      await until(() => output() === 'mounted\n', 'the child to mount');
      holder = spawn('sh', ['-c', `exec 3< ${join(mp, 'x')}; echo opened; exec sleep 60`], { stdio: ['ignore', 'pipe', 'inherit'] });
      let held = '';
      holder.stdout!.on('data', (d: Buffer) => (held += d.toString()));
      await until(() => held === 'opened\n', 'the holder to open the file');
      const exited = once(server, 'exit');
      server.stdin!.write('go\n');
      const [exitCode] = await exited;
      expect(exitCode).to.equal(0);
      expect(output()).to.equal('mounted\nunmounted\n');
      expect(holder.exitCode, 'the holder still holds the file').to.equal(null);
    } finally {
      if (server.exitCode === null) server.kill('SIGKILL');
      holder?.kill('SIGKILL');
    }
  });
});
