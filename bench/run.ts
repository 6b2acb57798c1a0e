/**
 * `npm run bench`: runs the benchmarks, prints their results, and writes
 * docs/performance.md. A bench that fails leaves the previous
 * docs/performance.md untouched and makes the run exit 1.
 *
 * `npm run bench -- NAME...` runs only the named benches and replaces only
 * their sections (by their "## " heading) in docs/performance.md, keeping
 * the others and the header as they were.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeMachine, watchBackgroundLoad } from './lib/machine.js';
import { REPO_ROOT } from './lib/tmp.js';
import { runCliStartupBench } from './cli-startup.js';
import { runFuseReadBench } from './fuse-read.js';
import { runPropagationBench } from './propagation.js';
import { runReconnectBench } from './reconnect.js';
import { runStoreWritesBench } from './store-writes.js';

type Bench = () => Promise<{ markdown: string }>;

async function main(): Promise<void> {
  const backgroundLoad = await watchBackgroundLoad();
  const sections: string[] = [];
  const failures: string[] = [];

  const benches: [string, Bench][] = [
    ['store-writes', runStoreWritesBench],
    ['fuse-read', runFuseReadBench],
    ['cli-startup', runCliStartupBench],
    ['propagation', runPropagationBench],
    ['reconnect', runReconnectBench],
  ];
  const picked = process.argv.slice(2);
  const unknown = picked.filter((name) => !benches.some(([known]) => known === name));
  if (unknown.length > 0) {
    process.stderr.write(`error: no bench named ${unknown.join(', ')}; the benches are ${benches.map(([name]) => name).join(', ')}\n`);
    process.exitCode = 2;
    return;
  }

  for (const [name, bench] of picked.length > 0 ? benches.filter(([known]) => picked.includes(known)) : benches) {
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
  const path = join(REPO_ROOT, 'docs', 'performance.md');
  if (picked.length > 0) {
    await writeFile(path, replaceSections(await readFile(path, 'utf8'), sections));
    process.stderr.write(`bench: replaced the sections of ${picked.join(', ')} in docs/performance.md\n`);
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
    '(builds with `scripts/setup`, installs `etcd-server` with apt-get when it is missing and the run is root, and takes a few minutes; ' +
      '`npm run bench -- propagation reconnect` runs only the benches named and replaces only their sections). Measured on:',
    '',
    ...machine,
    '',
    ...sections.flatMap((s) => [s, '']),
  ].join('\n');
  await mkdir(join(REPO_ROOT, 'docs'), { recursive: true });
  await writeFile(path, doc);
  process.stderr.write('bench: wrote docs/performance.md\n');
}

/** `doc` with each of `sections` put in place of the section with the same "## " heading, or added at the end. */
function replaceSections(doc: string, sections: string[]): string {
  const parts = doc.trimEnd().split(/\n(?=## )/);
  for (const section of sections) {
    const heading = section.split('\n')[0];
    const at = parts.findIndex((part) => part.split('\n')[0] === heading);
    if (at >= 0) parts[at] = section.trimEnd() + '\n';
    else parts.push(section.trimEnd() + '\n');
  }
  return parts.map((p) => p.trimEnd()).join('\n\n') + '\n';
}

// Turn Ctrl-C / SIGTERM into a normal exit so the exit hooks kill servers and remove scratch directories.
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));

await main();
