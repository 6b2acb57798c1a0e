/**
 * CLI start-up: how long `hush` takes to do a client command, against a bare
 * `node -e ''` started the same way in the same run (the floor no Node CLI
 * can beat). Client commands load neither the store nor libsodium; only
 * `hush deploy` loads the compose loader (yaml, ajv and the compose schema).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fmtX } from './lib/load.js';
import { startStoreProcess } from './lib/store-process.js';
import { makeScratchDir, REPO_ROOT } from './lib/tmp.js';

const RUNS = 20;
const HUSH = join(REPO_ROOT, 'bin', 'hush');

function medianMs(args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    const result = spawnSync(process.execPath, args, { env, stdio: 'ignore' });
    if (result.status !== 0) throw new Error(`${args.join(' ')} exited ${result.status}`);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

export async function runCliStartupBench(): Promise<{ markdown: string }> {
  const scratch = await makeScratchDir('cli');
  const store = await startStoreProcess(scratch.path);
  try {
    const env = { ...process.env, HUSH_HOST: `unix://${store.socket}` };
    const bare = medianMs(['-e', '']);
    const version = medianMs([HUSH, '--version']);
    const ls = medianMs([HUSH, 'secret', 'ls'], env);
    const deploy = medianMs([HUSH, 'deploy', '--dry-run', '-c', join(REPO_ROOT, 'test', 'fixtures', 'compose', 'postgres', 'compose.yaml')], env);
    const row = (what: string, ms: number) => `| ${what} | ${ms.toFixed(0)} | ${fmtX(ms / bare)} |`;
    return {
      markdown: [
        '## cli-startup',
        '',
        `Wall time of a whole command, median of ${RUNS} runs, against a bare \`node -e ''\` in the same run.`,
        '',
        '| command | ms | vs bare node |',
        '|---|--:|--:|',
        row("node -e ''", bare),
        row('hush --version', version),
        row('hush secret ls (store on a unix socket)', ls),
        row('hush deploy --dry-run (postgres compose file)', deploy),
      ].join('\n'),
    };
  } finally {
    await store.child.stop();
    await scratch.remove();
  }
}
