/**
 * `npm run bench`: runs the benchmarks, prints their results, and writes
 * docs/performance.md. A bench that fails leaves the previous
 * docs/performance.md untouched and makes the run exit 1.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeMachine, watchBackgroundLoad } from './lib/machine.js';
import { REPO_ROOT } from './lib/tmp.js';
import { runCliStartupBench } from './cli-startup.js';
import { runDockerReloadBench } from './docker-reload.js';
import { runFuseReadBench } from './fuse-read.js';
import { runStoreWritesBench } from './store-writes.js';

type Bench = () => Promise<{ markdown: string }>;

async function main(): Promise<void> {
  const backgroundLoad = await watchBackgroundLoad();
  const sections: string[] = [];
  const failures: string[] = [];

  const benches: [string, Bench][] = [
    ['store-writes', runStoreWritesBench],
    ['fuse-read', runFuseReadBench],
    ['docker-reload', runDockerReloadBench],
    ['cli-startup', runCliStartupBench],
  ];

  for (const [name, bench] of benches) {
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
    '(runs `scripts/setup-test` first: builds, and installs `etcd-server` and the Docker packages with apt-get when they are missing and the run is root; takes a few minutes). Measured on:',
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
