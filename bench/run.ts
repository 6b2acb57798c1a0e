/**
 * `npm run bench`: runs the benchmarks, prints their results, and writes
 * docs/performance.md. A bench that fails leaves the previous
 * docs/performance.md untouched and makes the run exit 1.
 *
 * `npm run bench -- NAME...` runs only those benches and replaces only their
 * sections of docs/performance.md (each section starts with its `## `
 * heading), noting when and under what load they were measured.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeMachine, watchBackgroundLoad } from './lib/machine.js';
import { REPO_ROOT } from './lib/tmp.js';
import { runCliStartupBench } from './cli-startup.js';
import { runDockerReloadBench } from './docker-reload.js';
import { runFuseReadBench } from './fuse-read.js';
import { runHaBench } from './ha.js';
import { runPropagationBench } from './propagation.js';
import { runReconnectBench } from './reconnect.js';
import { runStoreWritesBench } from './store-writes.js';

type Bench = () => Promise<{ markdown: string }>;

async function main(): Promise<void> {
  const backgroundLoad = await watchBackgroundLoad();
  const sections: string[] = [];
  const failures: string[] = [];

  const all: [string, Bench][] = [
    ['store-writes', runStoreWritesBench],
    ['fuse-read', runFuseReadBench],
    ['docker-reload', runDockerReloadBench],
    ['cli-startup', runCliStartupBench],
    ['ha', runHaBench],
    ['propagation', runPropagationBench],
    ['reconnect', runReconnectBench],
  ];
  const only = process.argv.slice(2);
  const unknown = only.filter((name) => !all.some(([n]) => n === name));
  if (unknown.length > 0) {
    process.stderr.write(`bench: no bench named ${unknown.join(', ')} (there are: ${all.map(([n]) => n).join(', ')})\n`);
    process.exitCode = 2;
    return;
  }
  const benches = only.length > 0 ? all.filter(([name]) => only.includes(name)) : all;

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
  if (only.length > 0) {
    await replaceSections(sections, machine);
    return;
  }
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

/** Puts each section in place of the one with the same `## ` heading in docs/performance.md (or at its end), with when it was measured. */
async function replaceSections(sections: string[], machine: string[]): Promise<void> {
  const path = join(REPO_ROOT, 'docs', 'performance.md');
  let doc = await readFile(path, 'utf8');
  const measured = machine.filter((line) => line.startsWith('- date:') || line.startsWith('- other work')).map((line) => line.slice(2));
  for (const section of sections) {
    const heading = section.split('\n')[0]!;
    const noted = `${section}\n\nThis section alone was measured with \`npm run bench -- ${benchNameOf(heading)}\`: ${measured.join('; ')}.`;
    const start = doc.indexOf(`${heading}\n`);
    if (start < 0) {
      doc = `${doc.trimEnd()}\n\n${noted}\n`;
      continue;
    }
    const next = doc.indexOf('\n## ', start + heading.length);
    doc = `${doc.slice(0, start)}${noted}\n${next < 0 ? '' : doc.slice(next)}`;
  }
  await writeFile(path, doc);
  process.stderr.write('bench: replaced those sections of docs/performance.md\n');
}

/** The bench name in a section heading like "## High availability (`bench/ha.ts`)", else "NAME". */
function benchNameOf(heading: string): string {
  return /bench\/([\w-]+)\.ts/.exec(heading)?.[1] ?? 'NAME';
}

// Turn Ctrl-C / SIGTERM into a normal exit so the exit hooks kill servers and remove scratch directories.
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));

await main();
