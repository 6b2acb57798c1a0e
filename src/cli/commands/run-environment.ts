/**
 * The environment `hush run` gives a command. hush's own variables never pass:
 * HUSH_JOIN_TOKEN (the docs recommend it for keeping the token out of `ps`)
 * would hand the command the power to join the cluster, and HUSH_HOME /
 * HUSH_HOST / HUSH_AGENT_SOCKET point at hush's credentials and sockets.
 * --env-clear goes further and passes only what a program needs to start and
 * to share the terminal it was given, as `docker run` starts from an empty
 * environment plus PATH and HOME.
 */
import { readFile } from 'node:fs/promises';

/** Docker's PATH for containers, for when hush run itself has none. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Every variable but hush's own. */
export function inheritedEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && !e[0].startsWith('HUSH_')));
}

/**
 * --env-clear: PATH (hush run's, which found the command, else Docker's),
 * HOME (the command's user's home from /etc/passwd, "/" when it has none, as
 * Docker does), and TERM when set (the command shares hush run's terminal).
 * Nothing else: no LANG, no USER, no SSH_AUTH_SOCK.
 */
export async function minimalEnvironment(env: NodeJS.ProcessEnv, uid: number): Promise<Record<string, string>> {
  const minimal: Record<string, string> = { PATH: env.PATH || DEFAULT_PATH, HOME: await homeOf(uid) };
  if (env.TERM) minimal.TERM = env.TERM;
  return minimal;
}

async function homeOf(uid: number): Promise<string> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    if (fields.length >= 7 && fields[2] === String(uid) && fields[5]) return fields[5];
  }
  return '/';
}
