/** The `ls`, `inspect` and `rm` subcommands that secrets, services and nodes share. */
import { Command } from 'commander';
import type { ApiClient } from '../client.js';
import { formatOption, printJson, printTable, type Format } from '../output.js';

interface ObjectKind {
  /** Plural shown in help, e.g. "secrets". */
  plural: string;
  /** REST collection, e.g. "/v1/secrets". */
  collection: string;
  /** Help for the argument, e.g. "secret names or ids". */
  argument: string;
}

const itemPath = (kind: ObjectKind, name: string) => `${kind.collection}/${encodeURIComponent(name)}`;

/** `ls [--format json]`: the whole collection, as a table of `columns` or as JSON. */
export function listCommand<T>(
  client: () => Promise<ApiClient>,
  kind: ObjectKind,
  columns: string[],
  row: (item: T) => string[],
  description = `list ${kind.plural}`,
): Command {
  return new Command('ls')
    .description(description)
    .addOption(formatOption())
    .action(async (opts: { format: Format }) => {
      const list = await (await client()).get<T[]>(kind.collection);
      if (opts.format === 'json') return printJson(list);
      printTable(columns, list.map(row));
    });
}

export function inspectCommand(client: () => Promise<ApiClient>, kind: ObjectKind, description = `show ${kind.plural} as JSON`): Command {
  return new Command('inspect')
    .description(description)
    .argument('<name...>', kind.argument)
    .action(async (names: string[]) => {
      const c = await client();
      const details = [];
      for (const name of names) details.push(await c.get(itemPath(kind, name)));
      printJson(details);
    });
}

export function removeCommand(client: () => Promise<ApiClient>, kind: ObjectKind, description = `remove ${kind.plural}`): Command {
  return new Command('rm')
    .alias('remove')
    .description(description)
    .argument('<name...>', kind.argument)
    .action(async (names: string[]) => {
      const c = await client();
      for (const name of names) {
        await c.delete(itemPath(kind, name));
        console.log(name);
      }
    });
}
