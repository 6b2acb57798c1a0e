/**
 * Rotation races on the kernel implementation (the agent's default): C
 * readers in their own processes loop open + read + close while 100
 * rotations run, and readers that opened a version earlier read it again
 * after the rotations and after the kernel dropped every cached page. Every
 * read must be one whole version, never a mix, never an error; a held fd
 * must keep its version. This process serves the mount and never reads it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { cleanStaleMounts, mountSecrets } from '../../src/tmpfs-mount/index.js';
import { MemorySource } from '../helpers/memory-source.js';
import { until } from '../helpers/until.js';

const exec = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const ROTATIONS = 100;

/** Version v of a file of `size` bytes, as rotation-reader.c checks it. */
function versionBytes(v: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  b.write(`v${String(v).padStart(7, '0')}\n`, 0, 'latin1');
  for (let i = 9; i < size; i++) b[i] = 97 + ((v * 7 + i) % 26);
  return b;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Child {
  child: ChildProcess;
  out(): string;
  err(): string;
}

function start(reader: string, args: string[]): Child {
  const child = spawn(reader, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return { child, out: () => out, err: () => err };
}

async function waitForLine(c: Child, pattern: RegExp): Promise<RegExpExecArray> {
  const seen: { match?: RegExpExecArray } = {};
  const printed = () => {
    seen.match = pattern.exec(c.out()) ?? undefined;
    if (!seen.match && c.child.exitCode !== null) throw new Error(`reader exited (${c.child.exitCode}) before it printed ${pattern}`);
    return seen.match !== undefined;
  };
  await until(printed, `the reader to print ${pattern}`, 15_000, 5).catch((err: Error) => {
    throw new Error(`${err.message}: ${c.out()} ${c.err()}`);
  });
  return seen.match!;
}

/** The child's exit code once its output is all read: 'close', not 'exit', which may come before the last of stdout. */
async function finish(c: Child): Promise<number | null> {
  if (c.child.exitCode !== null && c.child.stdout!.closed && c.child.stderr!.closed) return c.child.exitCode;
  const [code] = (await once(c.child, 'close')) as [number | null];
  return code;
}

describe('tmpfs-mount (kernel): rotation races', function () {
  this.timeout(180_000);
  let dir: string;
  let reader: string;
  const children: ChildProcess[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hush-rot-'));
    await chmod(dir, 0o755);
    reader = join(dir, 'rotation-reader');
    await exec('cc', ['-O2', '-o', reader, join(ROOT, 'test/helpers/rotation-reader.c')]);
  });

  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  after(async () => {
    if (!dir) return;
    await cleanStaleMounts(dir);
    await rm(dir, { recursive: true, force: true });
  });

  for (const size of [1024, 500 * 1024]) {
    it(`${size / 1024} KiB: looping readers see whole versions only, in order; held fds keep theirs across ${ROTATIONS} rotations and a cache drop`, async () => {
      const src = new MemorySource();
      src.set('s', versionBytes(1, size));
      const mnt = await mountSecrets(join(dir, `m${size}`), src);
      try {
        const file = join(mnt.mountpoint, 's');
        const spawnTracked = (args: string[]): Child => {
          const c = start(reader, args);
          children.push(c.child);
          return c;
        };
        const loops = [spawnTracked(['loop', file, String(size)]), spawnTracked(['loop', file, String(size)])];
        const held: Array<{ c: Child; version: number }> = [];
        const hold = async (expected: number) => {
          const c = spawnTracked(['hold', file, String(size)]);
          const m = await waitForLine(c, /held (\d+)\n/);
          // An open that starts after the rotation was applied sees it.
          expect(Number(m[1]), 'version seen by an open after the rotation').to.equal(expected);
          held.push({ c, version: expected });
        };
        await hold(1);
        for (let v = 2; v <= ROTATIONS + 1; v++) {
          src.set('s', versionBytes(v, size));
          if (v % 25 === 0) await hold(v);
          await sleep(3); // let the loop readers through between rotations
        }
        await sleep(100);
        // Every cached page of every version goes; the held fds must be answered from the versions they hold.
        await writeFile('/proc/sys/vm/drop_caches', '3');

        for (const l of loops) l.child.kill('SIGTERM');
        for (const l of loops) {
          const code = await finish(l);
          expect(code, `loop reader: ${l.err()}`).to.equal(0);
          const m = /reads (\d+) versions (\d+) last (\d+)/.exec(l.out());
          expect(m, l.out()).to.not.equal(null);
          expect(Number(m![1]), 'reads').to.be.greaterThan(0);
          expect(Number(m![3]), 'last version a loop read').to.equal(ROTATIONS + 1);
        }
        for (const h of held) {
          h.c.child.stdin!.end('go\n');
          const code = await finish(h.c);
          expect(code, `held reader of version ${h.version}: ${h.c.err()}`).to.equal(0);
          expect(h.c.out()).to.include(`ok ${h.version}\n`);
        }
        const stats = mnt.stats();
        expect(stats.errors, 'requests answered EIO').to.equal(0);
        expect(stats.stale, 'requests for dropped versions').to.equal(0);
      } finally {
        await mnt.unmount();
      }
    });
  }
});
