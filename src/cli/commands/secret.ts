/** `hush secret ...`: create, ls, inspect, rm, versions, rotate, rollback. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { ApiClient } from '../client.js';
import { collectKeyValue, readValue } from '../input.js';
import { ago, formatOption, printJson, printTable, type Format } from '../output.js';
import { timeoutOption, waitForPropagation, waitOption } from '../wait.js';
import { inspectCommand, listCommand, removeCommand } from './object-commands.js';
// Types only: erased at build, so the CLI loads nothing of the store.
import type { SecretDetail, SecretSummary } from '../../store/index.js';
import type { Propagation } from '../../rotation/index.js';

const path = (name: string) => `/v1/secrets/${encodeURIComponent(name)}`;

function wholeNumber(flag: string, min: number, max: number) {
  return (text: string): number => {
    if (!/^[0-9]+$/.test(text) || Number(text) < min || Number(text) > max) throw new InvalidArgumentError(`${flag} takes a whole number from ${min} to ${max}, not "${text}".`);
    return Number(text);
  };
}

const keepOption = () => new Option('--keep <versions>', 'versions this secret keeps; older ones are destroyed (default: the store\'s --keep-versions, 16)').argParser(wholeNumber('--keep', 1, 1000));
type VersionRow = SecretDetail['versions'][number] & { current: boolean; propagation?: Propagation };

function propagationCell(p: Propagation | undefined): string {
  if (!p) return '-';
  const acked = p.nodes.filter((n) => n.version !== undefined && n.version >= p.version).length;
  return p.nodes.length === 0 ? 'no entitled node' : `${acked}/${p.nodes.length} nodes${p.complete ? ' (complete)' : ''}`;
}

export function secretCommand(client: () => Promise<ApiClient>): Command {
  const secret = new Command('secret').description('manage secrets');

  secret
    .command('create')
    .description('create a secret from a file, or from stdin with "-"')
    .argument('<name>', 'secret name')
    .argument('[file]', 'file holding the value, or - for stdin')
    .option('--label <key=value>', 'add a label (repeatable)', collectKeyValue('--label'), {})
    .addOption(keepOption())
    .action(async (name: string, file: string | undefined, opts: { label: Record<string, string>; keep?: number }) => {
      const data = await readValue(file);
      const created = await (await client()).post<{ id: string }>('/v1/secrets', { name, data: data.toString('base64'), labels: opts.label, ...(opts.keep === undefined ? {} : { keep: opts.keep }) });
      data.fill(0);
      console.log(created.id);
    });

  const kind = { plural: 'secrets', collection: '/v1/secrets', argument: 'secret names or ids' };
  secret.addCommand(
    listCommand<SecretSummary>(
      client,
      kind,
      ['ID', 'NAME', 'VERSION', 'CREATED', 'UPDATED'],
      (s) => [s.id, s.name, String(s.version), ago(s.createdAt), ago(s.updatedAt)],
      'list secrets (never their values)',
    ),
  );
  secret.addCommand(inspectCommand(client, kind, "show secrets' metadata and versions as JSON (never values)"));
  secret.addCommand(removeCommand(client, kind));

  secret
    .command('versions')
    .description('list a secret\'s kept versions: when, who made each and how, and how far it has reached')
    .argument('<name>', 'secret name or id')
    .addOption(formatOption())
    .action(async (name: string, opts: { format: Format }) => {
      const versions = await (await client()).get<VersionRow[]>(`${path(name)}/versions`);
      if (opts.format === 'json') return printJson(versions);
      printTable(
        ['VERSION', 'CREATED', 'BY', 'HOW', 'PROPAGATION', ''],
        versions.map((v) => [
          String(v.version),
          v.createdAt,
          v.actor ?? '-',
          v.origin === 'rollback' ? `rollback to v${v.from}` : (v.origin ?? '-'),
          propagationCell(v.propagation),
          v.current ? 'current' : '',
        ]),
      );
    });

  secret
    .command('rotate')
    .description('give a secret a new version, from a file, stdin ("-") or --generate')
    .argument('<name>', 'secret name or id')
    .argument('[file]', 'file holding the new value, or - for stdin')
    .option('--generate <bytes>', 'generate a random value of this many bytes', (v) => Number.parseInt(v, 10))
    .addOption(new Option('--charset <charset>', 'with --generate: encode the random bytes as base64, hex or alnum (default: the raw bytes)').choices(['raw', 'base64', 'hex', 'alnum']))
    .addOption(keepOption())
    .option('--every <period>', 'with --generate: rotate on a schedule the store keeps (90s, 30m, 24h, 7d; first one period from now); "off" removes the schedule')
    .option('--now', 'with --every: also rotate at once')
    .addOption(waitOption())
    .addOption(timeoutOption())
    .action(async (name: string, file: string | undefined, opts: { generate?: number; charset?: string; keep?: number; every?: string; now?: boolean; wait?: boolean; timeout: number }, command: Command) => {
      const c = await client();
      if (opts.every !== undefined) {
        if (opts.every === 'off') {
          await c.delete(`${path(name)}/schedule`);
          console.log(`${name}: rotation schedule removed`);
          return;
        }
        if (opts.generate === undefined || file !== undefined) command.error('error: --every needs --generate BYTES (a scheduled rotation makes its own value) and no file', { exitCode: 2 });
        const detail = await c.put<SecretDetail>(`${path(name)}/schedule`, { every: opts.every, generate: opts.generate, ...(opts.charset ? { charset: opts.charset } : {}) });
        console.log(`${name}: a new ${opts.generate}-byte value every ${opts.every}; next at ${detail.schedule?.nextDue ?? '?'}`);
        if (!opts.now) return;
      } else if (opts.now) command.error('error: --now goes with --every', { exitCode: 2 });
      const body =
        opts.generate !== undefined
          ? { generate: opts.generate, ...(opts.charset ? { charset: opts.charset } : {}) }
          : { data: (await readValue(file)).toString('base64') };
      const rotated = await c.post<{ name: string; version: number }>(`${path(name)}/rotate`, { ...body, ...(opts.keep === undefined ? {} : { keep: opts.keep }) });
      console.log(`${name} is now at version ${rotated.version}`);
      if (opts.wait) await waitForPropagation(c, [{ secret: rotated.name, version: rotated.version }], opts.timeout);
    });

  secret
    .command('rollback')
    .description('make a new version holding an older version\'s value (history only moves forward)')
    .argument('<name>', 'secret name or id')
    .requiredOption('--to <version>', 'the kept version whose value to restore', wholeNumber('--to', 1, Number.MAX_SAFE_INTEGER))
    .addOption(waitOption())
    .addOption(timeoutOption())
    .action(async (name: string, opts: { to: number; wait?: boolean; timeout: number }) => {
      const c = await client();
      const made = await c.post<{ name: string; version: number; from: number }>(`${path(name)}/rollback`, { to: opts.to });
      console.log(`${name} is now at version ${made.version} (the value of version ${made.from})`);
      if (opts.wait) await waitForPropagation(c, [{ secret: made.name, version: made.version }], opts.timeout);
    });

  return secret;
}
