/**
 * The per-container FUSE filesystem, for real: real mounts, real kernel
 * permission checks, and every read done by a child process. This process
 * serves the mounts, so it must never read them itself (a synchronous read
 * would deadlock it); only /proc/self/mountinfo is read here.
 *
 * The contract both implementations keep (kernel protocol and fuse-native):
 * the whole suite runs once for each.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { cleanStaleMounts, mountSecrets, type FuseImplementation, type MountOptions, type SecretFile, type SecretSource, type SecretsMount } from '../../src/tmpfs-mount/index.js';
import { MemorySource } from '../helpers/memory-source.js';
import { isMountedAt } from '../helpers/mounts.js';
import { until } from '../helpers/until.js';

const ROOT = resolve(import.meta.dirname, '../..');
const READER = join(ROOT, 'test/helpers/fuse-reader.ts');
const INDEX = pathToFileURL(join(ROOT, 'src/tmpfs-mount/index.ts')).href;

interface Result {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs a command in a child process; never throws on a non-zero exit. */
function sh(file: string, args: string[]): Promise<Result> {
  return new Promise((done) => {
    execFile(file, args, { encoding: 'buffer', maxBuffer: 8 << 20, timeout: 10_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      done({ code, stdout, stderr: stderr.toString() });
    });
  });
}

async function cat(path: string): Promise<Buffer> {
  const r = await sh('cat', [path]);
  if (r.code !== 0) throw new Error(`cat ${path}: ${r.stderr}`);
  return r.stdout;
}

const asUser = (uid: number, gid: number, ...cmd: string[]): Promise<Result> =>
  sh('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--clear-groups', ...cmd]);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until a child prints `word` on stdout; returns everything printed so far. */
async function waitFor(child: ChildProcess, word: string): Promise<() => string> {
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const printed = () => {
    if (child.exitCode !== null) throw new Error(`child exited (${child.exitCode}) before it printed ${word}: ${out}`);
    return out.includes(word);
  };
  await until(printed, `the child to print ${JSON.stringify(word)}`, 15_000, 10).catch((err: Error) => {
    throw new Error(`${err.message}; it printed: ${out}`);
  });
  return () => out;
}

/**
 * Every handle the mount gave out is released. The kernel sends RELEASE after
 * close(2) has returned to the reader, so the count drops a moment later.
 */
async function allReleased(mnt: SecretsMount): Promise<void> {
  await until(() => mnt.stats().openHandles === 0, 'every handle released', 5_000, 10);
}

/** A child that opens `file` now and reads it to the end when told. */
async function holdOpen(file: string): Promise<{ readNow(): Promise<Buffer> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', READER, 'hold', file], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const output = await waitFor(child, 'opened\n');
  return {
    async readNow() {
      const exited = once(child, 'exit');
      child.stdin!.end('go\n');
      const [code] = await exited;
      expect(code, 'reader exit code').to.equal(0);
      return Buffer.from(output().split('\n')[1], 'base64');
    },
  };
}

/** A separate process that serves a mount of one file, then idles. */
async function serveInChild(mountpoint: string, implementation: FuseImplementation): Promise<ChildProcess> {
  const code = `
    import { mountSecrets } from ${JSON.stringify(INDEX)};
    const bytes = Buffer.from('stale\\n');
    const file = { name: 'x', uid: 0, gid: 0, mode: 0o444, mtime: new Date(), size: bytes.length, source: 'x', version: 1,
      open: () => ({ size: bytes.length, read: (p, l) => Buffer.from(bytes.subarray(p, p + l)) }) };
    const source = { list: () => [file], lookup: (n) => (n === 'x' ? file : undefined), onChange: () => () => {} };
    await mountSecrets(process.env.MP, source, { implementation: process.env.IMPLEMENTATION });
    process.stdout.write('mounted\\n');
    setInterval(() => {}, 1 << 30);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    env: { ...process.env, MP: mountpoint, IMPLEMENTATION: implementation },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await waitFor(child, 'mounted\n');
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

function assertFusePrerequisites(): void {
  const missing: string[] = [];
  if (!existsSync('/dev/fuse')) missing.push('/dev/fuse');
  if (!['/usr/bin/fusermount', '/bin/fusermount'].some((p) => existsSync(p))) missing.push('fusermount (apt-get install fuse)');
  if (!['/usr/lib/x86_64-linux-gnu/libfuse.so.2', '/lib/x86_64-linux-gnu/libfuse.so.2', '/usr/lib/aarch64-linux-gnu/libfuse.so.2', '/usr/lib/libfuse.so.2'].some((p) => existsSync(p))) {
    missing.push('libfuse.so.2 (apt-get install libfuse2)');
  }
  if (process.getuid?.() !== 0) missing.push('root (mounting and setpriv need it)');
  if (missing.length > 0) {
    // Never a skip: in CI (CI=true) and locally alike, missing FUSE is a failure.
    throw new Error(`FUSE integration tests cannot run (CI=${process.env.CI ?? 'unset'}): missing ${missing.join(', ')}`);
  }
}

// The same contract, once per implementation.
for (const implementation of ['kernel', 'native'] as const) {
  describe(`tmpfs-mount (${implementation}): read-only FUSE secrets filesystem`, function () {
    this.timeout(60_000);
    let dir: string;
    let seq = 0;

    before(async () => {
      assertFusePrerequisites();
      dir = await mkdtemp(join(tmpdir(), 'hush-fuse-'));
      // Non-root readers (setpriv) must be able to traverse down to the mounts.
      await chmod(dir, 0o755);
    });

    after(async () => {
      if (!dir) return;
      await cleanStaleMounts(dir);
      await rm(dir, { recursive: true, force: true });
    });

    const mount = (source: SecretSource, options?: MountOptions): Promise<SecretsMount> =>
      mountSecrets(join(dir, `m${++seq}`), source, { implementation, ...options });

    async function withMount(source: SecretSource, fn: (mnt: SecretsMount) => Promise<void>, options?: MountOptions): Promise<void> {
      const mnt = await mount(source, options);
      try {
        await fn(mnt);
      } finally {
        await mnt.unmount();
      }
    }

    it('serves exact bytes: text, all 256 byte values, a 500 KiB value', async () => {
      const src = new MemorySource();
      const text = 'postgres://app:s3cr3t@db:5432/app\n';
      const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const large = randomBytes(500 * 1024);
      src.set('text', text);
      src.set('binary', binary);
      src.set('large', large);
      src.set('empty', '');
      await withMount(src, async (mnt) => {
        expect((await cat(join(mnt.mountpoint, 'text'))).toString()).to.equal(text);
        expect((await cat(join(mnt.mountpoint, 'binary'))).equals(binary)).to.equal(true);
        expect((await cat(join(mnt.mountpoint, 'large'))).equals(large)).to.equal(true);
        expect((await cat(join(mnt.mountpoint, 'empty'))).length).to.equal(0);
        const missing = await sh('cat', [join(mnt.mountpoint, 'nope')]);
        expect(missing.code).to.not.equal(0);
        expect(missing.stderr).to.match(/No such file or directory/);
        await allReleased(mnt);
      });
    });

    it('shows each file with the owner and mode of its grant, under a 0555 root-owned directory', async () => {
      const src = new MemorySource();
      src.set('public', 'a', { uid: 0, gid: 0, mode: 0o444 });
      src.set('root-only', 'b', { uid: 0, gid: 0, mode: 0o400 });
      src.set('app', 'c', { uid: 1000, gid: 1000, mode: 0o400 });
      src.set('group', 'd', { uid: 0, gid: 1000, mode: 0o440 });
      await withMount(src, async (mnt) => {
        const ls = (await sh('ls', ['-ln', mnt.mountpoint])).stdout.toString();
        const rows = new Map(
          ls
            .split('\n')
            .filter((l) => l.startsWith('-'))
            .map((l) => l.trim().split(/\s+/))
            .map((f) => [f[f.length - 1], `${f[0]} ${f[2]} ${f[3]}`]),
        );
        expect(Object.fromEntries(rows)).to.deep.equal({
          public: '-r--r--r-- 0 0',
          'root-only': '-r-------- 0 0',
          app: '-r-------- 1000 1000',
          group: '-r--r----- 0 1000',
        });
        const root = (await sh('stat', ['-c', '%a %u %g %F', mnt.mountpoint])).stdout.toString().trim();
        expect(root).to.equal('555 0 0 directory');
        const mtime = (await sh('stat', ['-c', '%Y', join(mnt.mountpoint, 'app')])).stdout.toString().trim();
        expect(Number(mtime)).to.equal(Math.floor(src.lookup('app')!.mtime.getTime() / 1000));
      });
    });

    it('lets the kernel enforce uid/gid/mode (default_permissions, allow_other)', async () => {
      const src = new MemorySource();
      src.set('root-only', 'for root\n', { uid: 0, gid: 0, mode: 0o400 });
      src.set('app', 'for uid 1000\n', { uid: 1000, gid: 1000, mode: 0o400 });
      src.set('group', 'for gid 1000\n', { uid: 0, gid: 1000, mode: 0o440 });
      await withMount(src, async (mnt) => {
        const denied = await asUser(1000, 1000, 'cat', join(mnt.mountpoint, 'root-only'));
        expect(denied.code).to.not.equal(0);
        expect(denied.stderr).to.match(/Permission denied/);

        const owner = await asUser(1000, 1000, 'cat', join(mnt.mountpoint, 'app'));
        expect(owner.code, owner.stderr).to.equal(0);
        expect(owner.stdout.toString()).to.equal('for uid 1000\n');

        const otherUser = await asUser(1001, 1001, 'cat', join(mnt.mountpoint, 'app'));
        expect(otherUser.stderr).to.match(/Permission denied/);

        const groupMember = await asUser(1001, 1000, 'cat', join(mnt.mountpoint, 'group'));
        expect(groupMember.code, groupMember.stderr).to.equal(0);
        expect(groupMember.stdout.toString()).to.equal('for gid 1000\n');

        const listing = await asUser(1001, 1001, 'ls', mnt.mountpoint);
        expect(listing.code, listing.stderr).to.equal(0);
        await allReleased(mnt);
      });
    });

    it('refuses every write-type operation, as root too, before any request reaches the agent', async () => {
      const src = new MemorySource();
      src.set('f', 'original\n');
      await withMount(src, async (mnt) => {
        const f = join(mnt.mountpoint, 'f');
        const attempts: Array<[string, string[]]> = [
          ['overwrite', ['sh', '-c', `echo x > ${f}`]],
          ['append', ['sh', '-c', `echo x >> ${f}`]],
          ['create', ['touch', join(mnt.mountpoint, 'new')]],
          ['utimens', ['touch', f]],
          ['mkdir', ['mkdir', join(mnt.mountpoint, 'd')]],
          ['unlink', ['rm', '-f', f]],
          ['rename', ['mv', f, join(mnt.mountpoint, 'g')]],
          ['chmod', ['chmod', '600', f]],
          ['chown', ['chown', '1000:1000', f]],
          ['truncate', ['truncate', '-s', '0', f]],
          ['link', ['ln', f, join(mnt.mountpoint, 'hard')]],
          ['symlink', ['ln', '-s', f, join(mnt.mountpoint, 'sym')]],
          ['mknod', ['mkfifo', join(mnt.mountpoint, 'fifo')]],
          ['copy in', ['cp', '/etc/hostname', mnt.mountpoint]],
          ['setxattr', ['python3', '-c', `import os; os.setxattr(${JSON.stringify(f)}, 'user.k', b'v')`]],
          ['removexattr', ['python3', '-c', `import os; os.removexattr(${JSON.stringify(f)}, 'user.k')`]],
          ['non-root overwrite', ['setpriv', '--reuid', '1000', '--regid', '1000', '--clear-groups', 'sh', '-c', `echo x > ${f}`]],
        ];
        for (const [what, [cmd, ...args]] of attempts) {
          const r = await sh(cmd, args);
          expect(r.code, `${what} succeeded`).to.not.equal(0);
          expect(r.stderr, what).to.match(/Read-only file system|Permission denied/);
        }
        expect((await cat(f)).toString()).to.equal('original\n');
        const names = (await sh('ls', ['-A', mnt.mountpoint])).stdout.toString().split('\n').filter(Boolean);
        expect(names).to.deep.equal(['f']);
        // The `ro` mount option made the kernel refuse all of them itself.
        expect(mnt.stats().refused).to.equal(0);
      });
    });

    it('shows a new version to a new open within 100 ms (same size, grown, shrunk)', async () => {
      const src = new MemorySource();
      src.set('rot', 'version-1-aaaa');
      await withMount(src, async (mnt) => {
        const file = join(mnt.mountpoint, 'rot');
        for (const next of ['version-2-bbbb', 'version-3-a-longer-value', 'v4']) {
          // Warm the kernel's caches so the old bytes really are cached.
          await cat(file);
          await cat(file);
          src.set('rot', next);
          await sleep(100);
          expect((await cat(file)).toString()).to.equal(next);
        }
      });
    });

    it('drops a removed secret from listings and new opens within 100 ms', async () => {
      const src = new MemorySource();
      src.set('keep', 'k');
      src.set('gone', 'g');
      await withMount(src, async (mnt) => {
        await cat(join(mnt.mountpoint, 'gone'));
        src.remove('gone');
        await sleep(100);
        const r = await sh('cat', [join(mnt.mountpoint, 'gone')]);
        expect(r.stderr).to.match(/No such file or directory/);
        expect((await sh('ls', [mnt.mountpoint])).stdout.toString().split('\n').filter(Boolean)).to.deep.equal(['keep']);
      });
    });

    it('answers EIO, never hangs the reader, when the source throws', async () => {
      const broken: SecretFile = {
        name: 'broken',
        uid: 0,
        gid: 0,
        mode: 0o444,
        mtime: new Date(),
        size: 10,
        source: 'broken',
        version: 3,
        open: () => {
          throw new Error('no key for version 3');
        },
      };
      const source = { list: () => [broken], lookup: (n: string) => (n === 'broken' ? broken : undefined), onChange: () => () => {} };
      await withMount(source, async (mnt) => {
        const r = await sh('cat', [join(mnt.mountpoint, 'broken')]);
        expect(r.stderr).to.match(/Input\/output error/);
        expect(mnt.stats().errors).to.equal(1);
      });
    });

    it('keeps the version a handle opened: a held handle reads the old value to the end, a new open the new one', async () => {
      const src = new MemorySource();
      const v1 = randomBytes(500 * 1024);
      const v2 = randomBytes(500 * 1024);
      src.set('big', v1);
      await withMount(src, async (mnt) => {
        const file = join(mnt.mountpoint, 'big');
        const held = await holdOpen(file);
        // The kernel implementation keeps opens in the kernel (no_open): it has no handles to count.
        expect(mnt.stats().openHandles).to.equal(implementation === 'native' ? 1 : 0);
        src.set('big', v2);
        // 125 reads of 4 KiB, all after the change, all from version 1.
        expect((await held.readNow()).equals(v1), 'held handle read version 1').to.equal(true);
        await sleep(100);
        expect((await cat(file)).equals(v2), 'new open read version 2').to.equal(true);
        await allReleased(mnt);
      });
    });

    it('a held handle keeps its version even after another process read the new one', async () => {
      // native: with the page cache on ('auto'), pages belong to the file, not to
      // the handle: had the new open below read first, the held handle would get
      // its pages. 'off' (direct_io, the default) sends every read to the
      // handle's own version. kernel: the new version is another node with pages
      // of its own; the option means nothing to it.
      const src = new MemorySource();
      const v1 = randomBytes(300 * 1024);
      const v2 = randomBytes(300 * 1024);
      src.set('big', v1);
      await withMount(
        src,
        async (mnt) => {
          const file = join(mnt.mountpoint, 'big');
          const held = await holdOpen(file);
          src.set('big', v2);
          await sleep(100);
          expect((await cat(file)).equals(v2), 'new open read version 2').to.equal(true);
          expect((await held.readNow()).equals(v1), 'held handle read version 1').to.equal(true);
        },
        { cache: 'off' },
      );
    });

    it('unmounts (gone from mountinfo) even while a reader holds a file open, which keeps reading', async () => {
      const src = new MemorySource();
      src.set('s', 'still here\n');
      const mnt = await mount(src);
      try {
        expect(await isMountedAt(mnt.mountpoint)).to.equal(true);
        const held = await holdOpen(join(mnt.mountpoint, 's'));
        await mnt.unmount();
        expect(await isMountedAt(mnt.mountpoint)).to.equal(false);
        expect((await held.readNow()).toString()).to.equal('still here\n');
        await mnt.unmount(); // idempotent
      } finally {
        await mnt.unmount();
      }
    });

    it('cleanStaleMounts removes a mount whose serving process was killed with SIGKILL', async () => {
      const parent = join(dir, 'stale-killed');
      const mp = join(parent, 'c1');
      const child = await serveInChild(mp, implementation);
      try {
        expect((await cat(join(mp, 'x'))).toString()).to.equal('stale\n');
        await kill(child);
        expect(await isMountedAt(mp), 'a dead mount stays behind').to.equal(true);
        expect((await sh('stat', [mp])).stderr).to.match(/Transport endpoint is not connected/);
        expect(await cleanStaleMounts(parent)).to.deep.equal([mp]);
        expect(await isMountedAt(mp)).to.equal(false);
        expect(await cleanStaleMounts(parent)).to.deep.equal([]);
      } finally {
        await kill(child);
      }
    });

    it('cleanStaleMounts frees readers stuck on a mount whose serving process hangs', async () => {
      const parent = join(dir, 'stale-hung');
      const mp = join(parent, 'c1');
      const child = await serveInChild(mp, implementation);
      // Hung: every thread of the serving process stops (SIGSTOP), the kernel
      // protocol's serving threads as much as fuse-native's event loop.
      child.kill('SIGSTOP');
      const reader = spawn('cat', [join(mp, 'x')], { stdio: 'ignore' });
      try {
        await sleep(300);
        expect(reader.exitCode, 'the reader is stuck').to.equal(null);
        const exited = once(reader, 'exit');
        expect(await cleanStaleMounts(parent)).to.deep.equal([mp]);
        const [code] = await exited;
        expect(code).to.not.equal(0);
        expect(await isMountedAt(mp)).to.equal(false);
      } finally {
        // Killing the server also ends its FUSE connection: nothing stays stuck.
        await kill(child);
        await kill(reader);
      }
    });
  });
}
