/**
 * `hush run --service S [--user UID[:GID]] [--reload-signal SIG] -- CMD [ARGS]`
 *
 * Registers a container with the local agent (runtime API), then runs CMD in
 * a new mount namespace with the container's mount bound read-only at
 * /run/secrets, as the given user. Signals are forwarded (the agent sends the
 * reload signal to this process on rotation, and it reaches CMD the same
 * way); the exit code is passed through; the container is unregistered on
 * exit, and the agent unmounts. If this process is killed with -9, the agent
 * notices through the pid it was given.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { constants } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { HushError } from '../../errors/index.js';
import { DEFAULT_AGENT_SOCKET, hushHome, readHomeConfig } from '../../home/index.js';
import { ApiClient } from '../client.js';

interface RunFlags {
  service: string;
  user?: { uid: number; gid: number };
  reloadSignal?: NodeJS.Signals;
  agentSocket?: string;
}

/** Where the secrets appear inside the command's mount namespace. */
const SECRETS_DIR = '/run/secrets';

/**
 * Runs inside `unshare -m --propagation private`: nothing mounted here is
 * visible on the host. $1 = the container's mount, $2/$3 = uid/gid ("" = keep).
 */
const NAMESPACE_SCRIPT = [
  // Exit 125 (as docker run does for its own failures) so a setup failure is not mistaken for the command's code.
  `fail() { echo "hush run: could not bind the container's secrets at ${SECRETS_DIR}: did the agent stop? (hush up / hush agent)" >&2; exit 125; }`,
  `mount --bind "$1" ${SECRETS_DIR} || fail`,
  `mount -o remount,bind,ro ${SECRETS_DIR} || fail`,
  'uid=$2; gid=$3; shift 3',
  // Changing uid clears the parent-death signal set below, so it is set again here.
  'if [ -n "$uid" ]; then exec setpriv --reuid "$uid" --regid "$gid" --clear-groups --pdeathsig KILL -- "$@"; fi',
  'exec "$@"',
].join('\n');

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

function parseUser(value: string): { uid: number; gid: number } {
  const match = /^(\d+)(?::(\d+))?$/.exec(value);
  if (!match) throw new InvalidArgumentError('use UID or UID:GID (numbers), e.g. --user 999:999');
  return { uid: Number(match[1]), gid: Number(match[2] ?? match[1]) };
}

function parseSignal(value: string): NodeJS.Signals {
  const name = (value.toUpperCase().startsWith('SIG') ? value.toUpperCase() : `SIG${value.toUpperCase()}`) as NodeJS.Signals;
  if (!(name in constants.signals)) throw new InvalidArgumentError(`unknown signal "${value}"`);
  return name;
}

export function runCommand(): Command {
  return new Command('run')
    .description('run a command with its service\'s secrets at /run/secrets (read-only, in its own mount namespace)')
    .requiredOption('--service <name>', 'service whose secrets the command gets')
    .option('--user <uid[:gid]>', 'run the command as this user', parseUser)
    .option('--reload-signal <signal>', 'signal the command gets when one of its secrets has a new version (e.g. SIGHUP)', parseSignal)
    .option('--agent-socket <path>', 'the agent\'s runtime API socket (default: $HUSH_AGENT_SOCKET, then HUSH_HOME, then /run/hush/agent.sock)')
    .argument('<command...>', 'the command and its arguments (after --)')
    .passThroughOptions()
    .action(async (command: string[], flags: RunFlags) => {
      process.exitCode = await run(command, flags);
    });
}

async function run(command: string[], flags: RunFlags): Promise<number> {
  const socket = flags.agentSocket || process.env.HUSH_AGENT_SOCKET || (await readHomeConfig(hushHome())).agentSocket || DEFAULT_AGENT_SOCKET;
  const agent = await ApiClient.connect({ host: `unix://${socket}` });
  const id = `run-${randomBytes(6).toString('hex')}`;
  const container = await agent
    .post<{ mount: string | null }>('/v1/containers', { id, service: flags.service, pid: process.pid, reloadSignal: flags.reloadSignal })
    .catch((err: unknown) => {
      if (err instanceof HushError && err.code === 'unavailable') throw new HushError('unavailable', `cannot reach the hush agent at ${socket}: is it running (\`hush up\` or \`hush agent\`)? Or pass --agent-socket`);
      throw err;
    });
  try {
    if (!container.mount) throw new HushError('unavailable', 'the agent registered the container but made no mount for it');
    // The bind target must exist on the host; an empty directory on /run (tmpfs) holds nothing.
    await mkdir(SECRETS_DIR, { recursive: true, mode: 0o755 });
    const user = flags.user ? [String(flags.user.uid), String(flags.user.gid)] : ['', ''];
    // setpriv --pdeathsig first thing: if `hush run` dies (even kill -9), the command dies with it
    // instead of living on with the secrets of a container the agent has stopped. It survives the
    // execs that follow (unshare, sh, setpriv --reuid, CMD).
    const child = spawn(
      'setpriv',
      ['--pdeathsig', 'KILL', '--', 'unshare', '-m', '--propagation', 'private', '--', 'sh', '-c', NAMESPACE_SCRIPT, 'hush-run', container.mount, ...user, ...command],
      { stdio: 'inherit' },
    );
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    for (const signal of FORWARDED) process.on(signal, forward);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c, s) => resolve([c, s]));
    });
    for (const s of FORWARDED) process.off(s, forward);
    return code ?? 128 + (constants.signals[signal!] ?? 0);
  } finally {
    await agent.delete(`/v1/containers/${encodeURIComponent(id)}`).catch(() => undefined);
  }
}
