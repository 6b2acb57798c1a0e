/**
 * `npm run bench`: runs the benchmarks, prints their results, and writes
 * docs/performance.md. A bench that is not there yet is reported as skipped;
 * a bench that fails leaves the previous docs/performance.md untouched and
 * makes the run exit 1.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeMachine, watchBackgroundLoad } from './lib/machine.js';
import { REPO_ROOT } from './lib/tmp.js';
import { runStoreWritesBench } from './store-writes.js';

type Bench = () => Promise<{ markdown: string }>;

/** The FUSE read bench lives in its own module, which may not exist yet. */
async function loadFuseRead(): Promise<Bench | string> {
  const url = new URL('./fuse-read.js', import.meta.url).href;
  try {
    const mod = (await import(url)) as { runFuseReadBench?: Bench };
    return mod.runFuseReadBench ?? 'bench/fuse-read does not export runFuseReadBench';
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // Only a missing fuse-read module itself means "not there yet"; anything else is a real failure.
    if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message.includes('fuse-read')) return 'bench/fuse-read.ts is not there yet';
    throw err;
  }
}

async function main(): Promise<void> {
  const backgroundLoad = await watchBackgroundLoad();
  const sections: string[] = [];
  const failures: string[] = [];

  const benches: [string, Bench | string][] = [['store-writes', runStoreWritesBench]];
  benches.push(['fuse-read', await loadFuseRead().catch((err: Error) => `could not load: ${err.message}`)]);

  for (const [name, bench] of benches) {
    if (typeof bench === 'string') {
      process.stderr.write(`${name}: skipped (${bench})\n`);
      sections.push(`## ${name}\n\nNot run: ${bench}.`);
      continue;
    }
    process.stderr.write(`${name}: running…\n`);
    try {
      const { markdown } = await bench();
      sections.push(markdown);
      process.stdout.write(`\n${markdown}\n`);
    } catch (err) {
      failures.push(name);
      process.stderr.write(`${name}: FAILED: ${(err as Error).stack ?? err}\n`);
    }
  }

  if (failures.length > 0) {
    process.stderr.write(`bench: ${failures.join(', ')} failed; docs/performance.md left as it was\n`);
    process.exitCode = 1;
    return;
  }
  const machine = await describeMachine(await backgroundLoad());
  const doc = [
    '# Performance',
    '',
    'Written by `npm run bench` (bench/run.ts); do not edit by hand. To reproduce, on a machine like this one:',
    '',
    '```',
    'npm run bench',
    '```',
    '',
    '(builds with `scripts/setup`, installs `etcd-server` with apt-get when it is missing and the run is root, and takes a few minutes). Measured on:',
    '',
    ...machine,
    '',
    ...sections.flatMap((s) => [s, '']),
  ].join('\n');
  await mkdir(join(REPO_ROOT, 'docs'), { recursive: true });
  await writeFile(join(REPO_ROOT, 'docs', 'performance.md'), doc);
  process.stderr.write('bench: wrote docs/performance.md\n');
}

// Turn Ctrl-C / SIGTERM into a normal exit so the exit hooks kill servers and remove scratch directories.
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));

await main();
