/** `hush secret ...`: create, ls, inspect, rm, versions, rotate. */
import { Command } from 'commander';
import { ApiClient } from '../client.js';
import { collectKeyValue, readValue } from '../input.js';
import { ago, formatOption, printJson, printTable, type Format } from '../output.js';
import { inspectCommand, listCommand, removeCommand } from './object-commands.js';
// Types only: erased at build, so the CLI loads nothing of the store.
import type { SecretDetail, SecretSummary } from '../../store/index.js';

const path = (name: string) => `/v1/secrets/${encodeURIComponent(name)}`;

export function secretCommand(client: () => Promise<ApiClient>): Command {
  const secret = new Command('secret').description('manage secrets');

  secret
    .command('create')
    .description('create a secret from a file, or from stdin with "-"')
    .argument('<name>', 'secret name')
    .argument('[file]', 'file holding the value, or - for stdin')
    .option('--label <key=value>', 'add a label (repeatable)', collectKeyValue('--label'), {})
    .action(async (name: string, file: string | undefined, opts: { label: Record<string, string> }) => {
      const data = await readValue(file);
      const created = await (await client()).post<{ id: string }>('/v1/secrets', { name, data: data.toString('base64'), labels: opts.label });
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
    .description('list a secret\'s versions')
    .argument('<name>', 'secret name or id')
    .addOption(formatOption())
    .action(async (name: string, opts: { format: Format }) => {
      const detail = await (await client()).get<SecretDetail>(path(name));
      if (opts.format === 'json') return printJson(detail.versions);
      printTable(
        ['VERSION', 'CREATED', ''],
        detail.versions.map((v) => [String(v.version), v.createdAt, v.version === detail.version ? 'current' : '']),
      );
    });

  secret
    .command('rotate')
    .description('give a secret a new version, from a file, stdin ("-") or --generate')
    .argument('<name>', 'secret name or id')
    .argument('[file]', 'file holding the new value, or - for stdin')
    .option('--generate <bytes>', 'generate a random value of this many bytes', (v) => Number.parseInt(v, 10))
    .action(async (name: string, file: string | undefined, opts: { generate?: number }) => {
      const c = await client();
      const body = opts.generate !== undefined ? { generate: opts.generate } : { data: (await readValue(file)).toString('base64') };
      const rotated = await c.post<{ version: number }>(`${path(name)}/rotate`, body);
      console.log(`${name} is now at version ${rotated.version}`);
    });

  return secret;
}
