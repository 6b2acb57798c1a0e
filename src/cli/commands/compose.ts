/**
 * `hush compose [-c FILE ...] [-p PROJECT] [--volume-driver NAME] -- ARGS...`
 *
 * Runs docker compose (v2 `docker compose` when present, else Debian's
 * `docker-compose` 1.29) on a compose file generated from the user's files
 * (src/compose/docker-file.ts): each service's `secrets:` become one hush
 * volume at /run/secrets, served by the agent's Docker volume plugin from
 * the hush service `<project>_<service>`. For `up`, the project is deployed
 * to hush first (as `hush deploy`), so the services and secrets exist before
 * any container mounts them. The user's files are not changed. The
 * generated file holds no value; it is written under /run/hush (RAM on a
 * normal host: /run is a tmpfs), readable by root only, and removed when
 * compose exits. `-p` and `--project-directory` (the first file's folder)
 * are passed so that relative paths, `build:`, `env_file` and `.env`
 * resolve as they would without hush.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { HushError } from '../../errors/index.js';
import { hushHome, readHomeConfig } from '../../home/index.js';
import type { ApiClient } from '../client.js';
import { sendPlan } from './deploy.js';

interface ComposeFlags {
  composeFile?: string[];
  projectName?: string;
  volumeDriver?: string;
}

/** Where the generated files live while compose runs: hush's own directory under /run. */
const GENERATED_DIR = '/run/hush/compose';
/** What docker compose looks for when no -f is given, in its order. */
const DEFAULT_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];
/** Signals passed on to compose; SIGINT is not among them: the terminal sends Ctrl-C to compose too, and a second one would make it kill rather than stop. */
const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP'];

const collect = (value: string, previous: string[] = []) => [...previous, value];

function driverName(value: string): string {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(value)) throw new InvalidArgumentError('use the agent\'s --docker-plugin name: letters, digits, "_", "." or "-".');
  return value;
}

export function composeCommand(client: () => Promise<ApiClient>): Command {
  return new Command('compose')
    .description('run docker compose with each service\'s secrets served by hush at /run/secrets (`up` deploys the project to hush first)')
    .option('-c, --compose-file <file>', 'compose file; repeat to merge several (default: compose.yaml, compose.yml, docker-compose.yaml or docker-compose.yml here)', collect)
    .option('-p, --project-name <name>', 'project name (default: COMPOSE_PROJECT_NAME, then name:, then the first file\'s directory)')
    .option('--volume-driver <name>', 'the agent\'s Docker plugin name (default: what `hush up` recorded in HUSH_HOME, then "hush")', driverName)
    .argument('<args...>', 'docker compose command and its arguments, after --, e.g. -- up -d')
    .passThroughOptions()
    .action(async (args: string[], flags: ComposeFlags) => {
      process.exitCode = await compose(client, args, flags);
    });
}

async function compose(client: () => Promise<ApiClient>, args: string[], flags: ComposeFlags): Promise<number> {
  const files = flags.composeFile ?? [defaultFile()];
  const { loadWithModel, dockerComposeFile } = await import('../../compose/index.js');
  // Compose's own options may come before its command (`--verbose up`).
  const deploying = args.find((a) => !a.startsWith('-')) === 'up';
  // Only `up` sends values to the store; `down`, `ps` or `logs` must work without the secret files or variables at hand.
  const loaded = loadWithModel({ files, projectName: flags.projectName, env: process.env, readValues: deploying });
  for (const warning of loaded.warnings) process.stderr.write(`warning: ${warning}\n`);
  const driver = flags.volumeDriver ?? (await defaultDriver());
  const text = dockerComposeFile({ project: loaded.project, model: loaded.model, services: loaded.plan.services, driver });
  const runner = findCompose();

  if (deploying) await sendPlan(client, loaded.plan, { format: 'table' });

  await mkdir(GENERATED_DIR, { recursive: true, mode: 0o700 });
  const generated = join(GENERATED_DIR, `${loaded.project}-${randomBytes(6).toString('hex')}.yaml`);
  await writeFile(generated, text, { mode: 0o600, flag: 'wx' });
  try {
    const projectDir = dirname(resolve(files[0]));
    const child = spawn(runner[0], [...runner.slice(1), '-f', generated, '-p', loaded.project, '--project-directory', projectDir, ...args], { stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    const ignore = () => undefined;
    for (const signal of FORWARDED) process.on(signal, forward);
    process.on('SIGINT', ignore);
    try {
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done, fail) => {
        child.once('error', fail);
        child.once('exit', (c, s) => done([c, s]));
      });
      return code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
    } finally {
      for (const signal of FORWARDED) process.off(signal, forward);
      process.off('SIGINT', ignore);
    }
  } finally {
    await rm(generated, { force: true });
  }
}

function defaultFile(): string {
  const found = DEFAULT_FILES.find((name) => existsSync(name));
  if (!found) throw new HushError('bad_request', `no compose file here (looked for ${DEFAULT_FILES.join(', ')}); pass -c FILE`);
  return found;
}

async function defaultDriver(): Promise<string> {
  const recorded = (await readHomeConfig(hushHome())).dockerPlugin;
  if (recorded === 'off') throw new HushError('bad_request', '`hush up` runs with --docker-plugin off: start it with a plugin name, or pass --volume-driver NAME for an agent that serves one');
  return recorded ?? 'hush';
}

/** `docker compose` (v2) when the docker CLI has it, else Debian's `docker-compose` (1.29). */
function findCompose(): string[] {
  if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0) return ['docker', 'compose'];
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) return ['docker-compose'];
  throw new HushError('unavailable', 'neither `docker compose` nor `docker-compose` runs here; install one (Debian: apt-get install docker-compose)');
}
