/**
 * `hush run --service S [--user UID[:GID]] [--reload-signal SIG | --restart-on-rotate] [--env VAR=TARGET] [--cap-add CAP] [--cap-drop CAP] [--env-clear] -- CMD [ARGS]`
 *
 * Registers a container with the local agent (runtime API), then runs CMD
 * with the container's mount bound read-only at /run/secrets, in namespaces
 * of its own (docs/security.md, "hush run"):
 * - a mount namespace where the agent's directories (/run/hush and the
 *   mounts directory) are covered by an empty tmpfs, so other containers'
 *   mounts and hush's sockets are out of reach;
 * - a PID namespace with its own /proc, so /proc/<pid>/root of another
 *   container's process does not exist there;
 * - Docker's default capabilities (--cap-add/--cap-drop), no_new_privs, and
 *   the given user;
 * - an environment without hush's own variables (--env-clear: a minimal one),
 *   plus, opt-in, secret values as variables (--env VAR=TARGET, read from the
 *   container's mount by this process; run-secret-env.ts); on rotation the
 *   command gets --reload-signal, or is restarted (--restart-on-rotate), or
 *   keeps the value it started with (said on stderr at start).
 * Signals are forwarded (the agent sends the reload signal to this process
 * on rotation, and it reaches CMD the same way); the exit code is passed
 * through; the container is unregistered on exit, and the agent unmounts. If
 * this process is killed with -9, CMD dies with it and the agent notices
 * through the pid it was given.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { constants } from 'node:os';
import { dirname, relative } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { HushError } from '../../errors/index.js';
import { DEFAULT_AGENT_SOCKET, hushHome, readHomeConfig } from '../../home/index.js';
import { ApiClient } from '../client.js';
import { capabilityArgs, collectCapability, effectiveCapabilities } from './run-capabilities.js';
import { inheritedEnvironment, minimalEnvironment } from './run-environment.js';
import { collectSecretEnv, envChanged, readSecretEnv, type SecretEnv } from './run-secret-env.js';

interface RunFlags {
  service: string;
  user?: { uid: number; gid: number };
  reloadSignal?: NodeJS.Signals;
  agentSocket?: string;
  capAdd: string[];
  capDrop: string[];
  envClear?: boolean;
  env: SecretEnv[];
  restartOnRotate?: boolean;
}

/**
 * With --restart-on-rotate the agent signals this process (not the command)
 * when one of the service's secrets has a new version: this signal, which is
 * then not forwarded. The agent sends one signal of the registrant's choice;
 * SIGUSR2 is the one programs least often expect from a terminal.
 */
const ROTATION_NOTICE: NodeJS.Signals = 'SIGUSR2';
/** A command that ignores SIGTERM on a restart is killed after this long. */
const RESTART_GRACE_MS = 10_000;

/** Where the secrets appear inside the command's mount namespace. */
const SECRETS_DIR = '/run/secrets';
/** The agent's default home for its sockets and mounts; hidden even when this agent uses other paths. */
const AGENT_RUN_DIR = '/run/hush';

/**
 * Runs as PID 2 of the new PID namespace, root with every capability, in the
 * new mount namespace (private propagation: nothing mounted here shows on the
 * host). $1 = the container's mount, $2 = how many directories to hide, then
 * those directories, then the setpriv command that drops privileges and execs
 * CMD. The secrets are bound before the directories are hidden: the bind
 * stays when the mounts directory it came from is covered.
 */
const NAMESPACE_SCRIPT = [
  // Exit 125 (as docker run does for its own failures) so a setup failure is not mistaken for the command's code.
  'fail() { echo "hush run: $1" >&2; exit 125; }',
  `bind_failed="could not bind the container's secrets at ${SECRETS_DIR}: did the agent stop? (hush up / hush agent)"`,
  // A /proc of this PID namespace: it lists only the command's own processes.
  'mount -t proc -o nosuid,nodev,noexec proc /proc || fail "could not mount /proc for the command\'s PID namespace"',
  `mount --bind "$1" ${SECRETS_DIR} || fail "$bind_failed"`,
  `mount -o remount,bind,ro ${SECRETS_DIR} || fail "$bind_failed"`,
  'n=$2; shift 2',
  'while [ "$n" -gt 0 ]; do',
  // A parent hidden first takes its children with it: skip what no longer exists.
  '  if [ -d "$1" ]; then mount -t tmpfs -o ro,nosuid,nodev,noexec,size=4k,nr_inodes=1,mode=0755 hush-hidden "$1" || fail "could not hide $1"; fi',
  '  n=$((n - 1)); shift',
  'done',
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
    .description('run a command with its service\'s secrets at /run/secrets (read-only), in its own mount and PID namespaces with Docker\'s default capabilities')
    .requiredOption('--service <name>', 'service whose secrets the command gets')
    .option('--user <uid[:gid]>', 'run the command as this user', parseUser)
    .option('--reload-signal <signal>', 'signal the command gets when one of its secrets has a new version (e.g. SIGHUP)', parseSignal)
    .option('--cap-add <cap>', 'add a capability to Docker\'s default set (repeatable; ALL for every one)', collectCapability, [])
    .option('--cap-drop <cap>', 'drop a capability from Docker\'s default set (repeatable; ALL for every one)', collectCapability, [])
    .option('--env-clear', 'give the command only PATH, HOME and TERM instead of this environment (hush\'s own HUSH_* never pass)')
    .option('--env <VAR=TARGET>', 'put the value of the service\'s grant with this target file into the command\'s environment as VAR (repeatable; opt-in: a file at /run/secrets is safer)', collectSecretEnv, [])
    .addOption(new Option('--restart-on-rotate', 'restart the command with the new values when a secret given with --env has a new version').conflicts('reloadSignal'))
    .option('--agent-socket <path>', 'the agent\'s runtime API socket (default: $HUSH_AGENT_SOCKET, then HUSH_HOME, then /run/hush/agent.sock)')
    .argument('<command...>', 'the command and its arguments (after --)')
    .passThroughOptions()
    .action(async (command: string[], flags: RunFlags, self: Command) => {
      if (flags.restartOnRotate && flags.env.length === 0) self.error('error: --restart-on-rotate restarts the command when a value given with --env changes: pass --env VAR=TARGET', { exitCode: 2 });
      process.exitCode = await run(command, flags);
    });
}

async function run(command: string[], flags: RunFlags): Promise<number> {
  const socket = flags.agentSocket || process.env.HUSH_AGENT_SOCKET || (await readHomeConfig(hushHome())).agentSocket || DEFAULT_AGENT_SOCKET;
  const env = flags.envClear ? await minimalEnvironment(process.env, flags.user?.uid ?? 0) : inheritedEnvironment(process.env);
  const agent = await ApiClient.connect({ host: `unix://${socket}` });
  const id = `run-${randomBytes(6).toString('hex')}`;
  // The agent reads this process's start time while it waits for the reply, so the pid cannot have been reused yet.
  const container = await agent
    .post<{ mount: string | null }>('/v1/containers', { id, service: flags.service, pid: process.pid, reloadSignal: flags.reloadSignal ?? (flags.restartOnRotate ? ROTATION_NOTICE : undefined) })
    .catch((err: unknown) => {
      if (err instanceof HushError && err.code === 'unavailable') throw new HushError('unavailable', `cannot reach the hush agent at ${socket}: is it running (\`hush up\` or \`hush agent\`)? Or pass --agent-socket`);
      throw err;
    });
  try {
    if (!container.mount) throw new HushError('unavailable', 'the agent registered the container but made no mount for it');
    const hidden = hiddenDirectories(container.mount);
    // The bind target must exist on the host; an empty directory on /run (tmpfs) holds nothing.
    await mkdir(SECRETS_DIR, { recursive: true, mode: 0o755 });
    let secretEnv = await readSecretEnv(container.mount, flags.env, flags.service, flags.user);
    if (flags.env.length > 0 && !flags.reloadSignal && !flags.restartOnRotate) {
      const one = flags.env.length === 1;
      process.stderr.write(
        `hush run: ${flags.env.map((e) => e.variable).join(', ')} ${one ? 'keeps the value it starts' : 'keep the values they start'} with; a rotation does not change ${one ? 'it' : 'them'} ` +
          '(pass --restart-on-rotate, or --reload-signal for a command that re-reads /run/secrets)\n',
      );
    }
    const launch = () =>
      spawn('setpriv', [...launcherArgs(), 'sh', '-c', NAMESPACE_SCRIPT, 'hush-run', container.mount!, String(hidden.length), ...hidden, ...dropPrivileges(flags), ...command], {
        stdio: 'inherit',
        // The values travel in the environment only, never in the argument list.
        env: { ...env, ...secretEnv },
      });
    let child: ChildProcess = launch();
    let restarting = false;
    const forwarded = flags.restartOnRotate ? FORWARDED.filter((s) => s !== ROTATION_NOTICE) : FORWARDED;
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    for (const signal of forwarded) process.on(signal, forward);
    const onRotation = () => {
      void readSecretEnv(container.mount!, flags.env, flags.service, flags.user).then(
        (next) => {
          if (restarting || !envChanged(secretEnv, next)) return;
          secretEnv = next;
          restarting = true;
          process.stderr.write('hush run: a secret in the environment has a new version; restarting the command\n');
          child.kill('SIGTERM');
          const running = child;
          setTimeout(() => running.kill('SIGKILL'), RESTART_GRACE_MS).unref();
        },
        (err: unknown) => process.stderr.write(`hush run: not restarting: ${(err as Error).message}\n`),
      );
    };
    if (flags.restartOnRotate) process.on(ROTATION_NOTICE, onRotation);
    try {
      for (;;) {
        const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
          child.once('error', reject);
          child.once('exit', (c, s) => resolve([c, s]));
        });
        if (!restarting) return code ?? 128 + (constants.signals[signal!] ?? 0);
        restarting = false;
        child = launch();
      }
    } finally {
      for (const s of forwarded) process.off(s, forward);
      process.off(ROTATION_NOTICE, onRotation);
    }
  } finally {
    await agent.delete(`/v1/containers/${encodeURIComponent(id)}`).catch(() => undefined);
  }
}

/**
 * The process chain up to the namespace script, this process's child first:
 *
 *   setpriv --pdeathsig KILL   if `hush run` dies (even kill -9), everything below dies: a
 *                              command must not outlive the container the agent stopped
 *   unshare --mount --pid      new namespaces; without --fork the PID namespace holds the
 *                              children of what it execs, not that process itself
 *   tini -s -p SIGKILL         the relay: stays this process's child (same pid, exec'd into),
 *                              so the signals forwarded to it (the agent's reload signal,
 *                              Ctrl-C, SIGTERM) go on to PID 1. `unshare --fork` would put
 *                              its own parent process here, which forwards nothing.
 *   tini -p SIGKILL            PID 1 of the namespace: forwards signals to the command (a
 *                              PID 1 without handlers would ignore SIGTERM) and reaps orphans;
 *                              when it exits the kernel kills whatever is left inside.
 *
 * tini (Debian's, as `docker run --init` uses) and not an init of our own: a
 * Node process cannot reap orphans it did not spawn (libuv waits only for its
 * own children), and a C one would need a compiler at setup. It passes the
 * command's exit code (128+N for a signal) through both levels.
 */
function launcherArgs(): string[] {
  return ['--pdeathsig', 'KILL', '--', 'unshare', '--mount', '--pid', '--propagation', 'private', '--', 'tini', '-s', '-p', 'SIGKILL', '--', 'tini', '-p', 'SIGKILL', '--'];
}

/** The last exec before CMD: Docker's capability rules, no_new_privs (no setuid binary gives any back), then the user. */
function dropPrivileges(flags: RunFlags): string[] {
  const user = flags.user ? ['--reuid', String(flags.user.uid), '--regid', String(flags.user.gid), '--clear-groups'] : [];
  return ['setpriv', '--no-new-privs', ...capabilityArgs(effectiveCapabilities(flags.capAdd, flags.capDrop)), ...user, '--'];
}

/**
 * /run/hush and the agent's mounts directory (wherever --mounts put it: the
 * parent of the container's mount), outermost first. Refused when hiding one
 * would hide /run/secrets too.
 */
function hiddenDirectories(mount: string): string[] {
  const dirs = [...new Set([AGENT_RUN_DIR, dirname(mount)])].sort((a, b) => a.length - b.length);
  for (const dir of dirs) {
    if (!relative(dir, SECRETS_DIR).startsWith('..')) throw new HushError('bad_request', `the agent's directory ${dir} holds ${SECRETS_DIR}: give the agent a --mounts directory elsewhere`);
  }
  return dirs;
}
