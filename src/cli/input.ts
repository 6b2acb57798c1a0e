/** Reading secret values and key=value options from the command line. */
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, Option } from 'commander';
import { HushError } from '../errors/index.js';
import { assertAdminCertLifetime, parseDuration } from '../rules/index.js';

/** A value from a file, or from stdin with "-" (or when stdin is piped and no file is given), like `docker secret create`. */
export async function readValue(source: string | undefined): Promise<Buffer> {
  if (source === undefined && process.stdin.isTTY) {
    throw new HushError('bad_request', 'give the value as a file, or "-" to read it from stdin (e.g. `printf s3cret | hush secret create NAME -`)');
  }
  if (source === undefined || source === '-') return readStdin();
  try {
    return await readFile(source);
  } catch (err) {
    throw new HushError('bad_request', `cannot read ${source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Collects repeated `--label K=V` options into a record. */
export function collectKeyValue(flag: string) {
  return (pair: string, previous: Record<string, string> = {}): Record<string, string> => {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`${flag} takes KEY=VALUE, not "${pair}".`);
    return { ...previous, [pair.slice(0, eq)]: pair.slice(eq + 1) };
  };
}

/** An admin certificate lifetime flag ("30d", "12h"): parsed and bounded here, so a bad one is a usage error (exit 2) before anything is asked of the store. */
export function certTtlOption(flags: string, description: string): Option {
  return new Option(flags, description).argParser((text: string) => {
    try {
      const seconds = parseDuration(text);
      assertAdminCertLifetime(seconds);
      return seconds;
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  });
}

export type FuseChoice = 'kernel' | 'native';

/** `--fuse kernel|native` of `hush agent` and `hush up`; absent means kernel, or native where /dev/fuse cannot be driven directly. */
export function fuseOption(): Option {
  return new Option(
    '--fuse <implementation>',
    'how secret mounts are served: kernel (the FUSE kernel protocol, page-cache speed) or native (fuse-native, the fallback); default kernel, native if /dev/fuse cannot be driven directly',
  ).choices(['kernel', 'native']);
}

/**
 * The agent's Docker flags, shared by `hush agent` and `hush up`, checked at
 * parse time so a typo is a usage error (the agent checks the name again).
 */
export function dockerPluginOptions(): Option[] {
  return [
    new Option('--docker-plugin <name|off>', 'serve Docker\'s volume plugin at /run/docker/plugins/NAME.sock (docker run --mount ...,volume-driver=NAME,source=SERVICE); "off" turns it off')
      .default('hush')
      .argParser((name: string) => {
        if (name !== 'off' && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(name)) throw new InvalidArgumentError('use 1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit, or "off".');
        return name;
      }),
    // Not DOCKER_HOST: users point that at hush's own Docker-compatible API, which runs no containers.
    new Option('--docker-host <url>', 'where dockerd listens, to learn which container a mount is for and to send reload signals (DOCKER_HOST is not read)')
      .default('unix:///var/run/docker.sock')
      .argParser((url: string) => {
        if (!/^unix:\/\/\/./.test(url) && !/^tcp:\/\/[^/]+:\d{1,5}\/?$/.test(url)) throw new InvalidArgumentError('use unix:///path/docker.sock or tcp://HOST:PORT.');
        return url;
      }),
  ];
}

/** What the Docker flags ask the agent for; undefined when the plugin is off. */
export function dockerPluginFrom(flags: { dockerPlugin: string; dockerHost: string }): { name: string; dockerHost: string } | undefined {
  return flags.dockerPlugin === 'off' ? undefined : { name: flags.dockerPlugin, dockerHost: flags.dockerHost };
}
