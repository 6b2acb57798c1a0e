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
