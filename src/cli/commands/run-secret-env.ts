/**
 * `hush run --env VAR=TARGET`: a secret's value in the command's environment,
 * opt-in, for programs that read nothing else. The value is read here, in
 * `hush run` (a client of the agent, never the process serving the mount),
 * from the container's own mount: the file TARGET of the service's grants,
 * exactly what the command would read at /run/secrets/TARGET. It goes into
 * the child's environment only: never into an argument list (visible to
 * every user in `ps`), never into a log or an error message.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { HushError } from '../../errors/index.js';

export interface SecretEnv {
  variable: string;
  target: string;
}

// POSIX names for variables a shell can use: letters, digits, underscores, not starting with a digit.
const VARIABLE = /^[A-Za-z_][A-Za-z0-9_]*$/;
// A grant's target is a plain file name (acl checks it at grant time); refuse anything else before reading.
const TARGET = /^[^/\0]+$/;

/** Commander's collector for repeatable `--env VAR=TARGET`. */
export function collectSecretEnv(value: string, previous: SecretEnv[] = []): SecretEnv[] {
  const eq = value.indexOf('=');
  const variable = eq < 0 ? '' : value.slice(0, eq);
  const target = eq < 0 ? '' : value.slice(eq + 1);
  if (!VARIABLE.test(variable)) throw new InvalidArgumentError(`"${value}": use VAR=TARGET, VAR a variable name (letters, digits, _), e.g. DB_PASSWORD=password`);
  if (!TARGET.test(target) || target === '.' || target === '..') throw new InvalidArgumentError(`"${value}": TARGET is the target file name of one of the service's grants, e.g. password`);
  if (previous.some((e) => e.variable === variable)) throw new InvalidArgumentError(`--env ${variable} is given twice`);
  return [...previous, { variable, target }];
}

/**
 * The values, read from the container's mount; a missing target or a value
 * no environment can hold is a clear error that shows no value. `user` is
 * who the command runs as: this process reads as root, so it checks the
 * grant's owner and mode itself and refuses a value the command could not
 * read from /run/secrets (root in the command reads anything, as in Docker).
 */
export async function readSecretEnv(mount: string, specs: readonly SecretEnv[], service: string, user?: { uid: number; gid: number }): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  for (const { variable, target } of specs) {
    if (user && user.uid !== 0) {
      const st = await stat(join(mount, target)).catch(() => undefined);
      if (st && !readableBy(st, user)) {
        throw new HushError('forbidden', `--env ${variable}=${target}: user ${user.uid}:${user.gid} may not read it (the grant gives it to ${st.uid}:${st.gid} with mode 0${(st.mode & 0o777).toString(8)})`);
      }
    }
    const data = await readFile(join(mount, target)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new HushError('bad_request', `--env ${variable}=${target}: service "${service}" has no grant with target "${target}"`);
      throw new HushError('internal', `--env ${variable}=${target}: cannot read the secret from the container's mount (${err.code ?? err.message})`);
    });
    // execve passes C strings: a NUL would cut the value short without a word. Text is what an environment holds.
    if (data.includes(0)) throw new HushError('bad_request', `--env ${variable}=${target}: the value contains a NUL byte, which no environment variable can hold; read it from /run/secrets/${target} instead`);
    const text = data.toString('utf8');
    if (!Buffer.from(text, 'utf8').equals(data)) throw new HushError('bad_request', `--env ${variable}=${target}: the value is not UTF-8 text; read it from /run/secrets/${target} instead`);
    values[variable] = text;
    data.fill(0);
  }
  return values;
}

/** Whether two reads differ (a rotation of one of the env secrets, not of another file of the service). */
export function envChanged(before: Record<string, string>, after: Record<string, string>): boolean {
  return Object.keys(after).some((k) => before[k] !== after[k]);
}

function readableBy(st: { uid: number; gid: number; mode: number }, user: { uid: number; gid: number }): boolean {
  if (st.uid === user.uid) return (st.mode & 0o400) !== 0;
  if (st.gid === user.gid) return (st.mode & 0o040) !== 0;
  return (st.mode & 0o004) !== 0;
}
