/**
 * `hush deploy` and `hush stack deploy|ls|rm`. As with `docker stack deploy`,
 * the client reads the compose files (src/compose: merge, interpolate,
 * validate, read `file:`/`environment:` values) and sends the resolved plan
 * to `POST /v1/deploy`; the store checks it again and applies it in one
 * transaction. src/compose is loaded only when a deploy runs, so the other
 * commands start without yaml and the compose schema.
 */
import { Command, Option } from 'commander';
import type { DeployPlan } from '../../compose/index.js';
import type { DeployAction, DeployResult, StackSummary } from '../../store/index.js';
import type { ApiClient } from '../client.js';
import { formatOption, printJson, printTable, type Format } from '../output.js';
import { DEFAULT_WAIT_SECONDS, timeoutOption, waitForPropagation, waitOption } from '../wait.js';

interface DeployOptions {
  composeFile: string[];
  prune?: boolean;
  dryRun?: boolean;
  format: Format;
  wait?: boolean;
  timeout: number;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];
const composeFileOption = () => new Option('-c, --compose-file <file>', 'compose file; repeat to merge several, later ones override (as docker stack deploy -c)').argParser(collect).makeOptionMandatory();
const pruneOption = () => new Option('--prune', "remove the project's secrets and services that the files no longer have");
const dryRunOption = () => new Option('--dry-run', 'print what would be created, versioned and removed; change nothing');

export function deployCommand(client: () => Promise<ApiClient>): Command {
  return new Command('deploy')
    .description('create or update the secrets and services of a compose project (all or nothing)')
    .addOption(composeFileOption())
    .option('-p, --project-name <name>', 'project name (default: COMPOSE_PROJECT_NAME, then name:, then the first file\'s directory)')
    .addOption(pruneOption())
    .addOption(dryRunOption())
    .addOption(formatOption())
    .addOption(waitOption())
    .addOption(timeoutOption())
    .action((opts: DeployOptions & { projectName?: string }) => deploy(client, opts, opts.projectName));
}

export function stackCommand(client: () => Promise<ApiClient>): Command {
  const stack = new Command('stack').description('compose projects: deploy, list, remove (as docker stack)');

  stack
    .command('deploy')
    .description('deploy a compose project under the name STACK (as docker stack deploy)')
    .argument('<stack>', 'stack (project) name')
    .addOption(composeFileOption())
    .addOption(pruneOption())
    .addOption(dryRunOption())
    .addOption(formatOption())
    .addOption(waitOption())
    .addOption(timeoutOption())
    .action((name: string, opts: DeployOptions) => deploy(client, opts, name));

  stack
    .command('ls')
    .description('list stacks: projects with the secrets and services labelled com.docker.stack.namespace=NAME')
    .addOption(formatOption())
    .action(async (opts: { format: Format }) => {
      const stacks = await (await client()).get<StackSummary[]>('/v1/stacks');
      if (opts.format === 'json') return printJson(stacks);
      printTable(['NAME', 'SECRETS', 'SERVICES'], stacks.map((s) => [s.name, String(s.secrets), String(s.services)]));
    });

  stack
    .command('rm')
    .alias('remove')
    .description('remove every secret and service of a stack, each stack in one transaction')
    .argument('<stack...>', 'stack (project) names')
    .action(async (names: string[]) => {
      const c = await client();
      for (const name of names) {
        const removed = await c.delete<{ project: string; actions: DeployAction[] }>(`/v1/stacks/${encodeURIComponent(name)}`);
        for (const a of removed.actions) console.log(`Removing ${a.kind} ${a.name}`);
      }
    });
  return stack;
}

async function deploy(client: () => Promise<ApiClient>, opts: DeployOptions, projectName: string | undefined): Promise<void> {
  const { loadComposeProject } = await import('../../compose/index.js');
  const loaded = loadComposeProject({ files: opts.composeFile, projectName, env: process.env });
  if (loaded.ignoredFields.length > 0) {
    process.stderr.write(`ignored (hush applies secrets, grants and placement constraints; it runs no containers): ${loaded.ignoredFields.join(', ')}\n`);
  }
  for (const warning of loaded.warnings) process.stderr.write(`warning: ${warning}\n`);
  await sendPlan(client, loaded.plan, opts);
}

/** Sends a loaded plan to `POST /v1/deploy` and prints the store's answer (also `hush compose up`'s first step). */
export async function sendPlan(client: () => Promise<ApiClient>, plan: DeployPlan, opts: { prune?: boolean; dryRun?: boolean; format: Format; wait?: boolean; timeout?: number }): Promise<void> {
  const body = {
    project: plan.project,
    secrets: plan.secrets.map((s) => ({ key: s.key, name: s.name, external: s.external, labels: s.labels, ...(s.data === undefined ? {} : { data: Buffer.from(s.data).toString('base64') }) })),
    services: plan.services,
    prune: opts.prune ?? false,
    dryRun: opts.dryRun ?? false,
  };
  const c = await client();
  const result = await c.post<DeployResult>('/v1/deploy', body);
  if (opts.format === 'json') printJson(result);
  else printActions(result);
  if (opts.wait && !result.dryRun) {
    // The secrets this deploy gave a value: each version must reach the nodes entitled to it.
    const targets = result.actions.filter((a) => a.kind === 'secret' && (a.action === 'create' || a.action === 'version') && a.version !== undefined).map((a) => ({ secret: a.name, version: a.version! }));
    await waitForPropagation(c, targets, opts.timeout ?? DEFAULT_WAIT_SECONDS);
  }
}

const DONE: Record<string, string> = { create: 'created', version: 'versioned', update: 'updated', unchanged: 'unchanged', external: 'external', remove: 'removed' };
const TO_DO: Record<string, string> = { create: 'to create', version: 'to version', update: 'to update', unchanged: 'unchanged', external: 'external', remove: 'to remove' };

function printActions(result: DeployResult): void {
  if (result.actions.length > 0) {
    printTable(
      ['ACTION', 'KIND', 'NAME', 'VERSION'],
      result.actions.map((a) => [a.action, a.kind, a.name, a.version === undefined ? '-' : String(a.version)]),
    );
  }
  const counts = new Map<string, number>();
  for (const a of result.actions) counts.set(a.action, (counts.get(a.action) ?? 0) + 1);
  const words = result.dryRun ? TO_DO : DONE;
  const summary = [...counts].map(([action, n]) => `${n} ${words[action] ?? action}`).join(', ') || 'nothing in the plan';
  console.log(result.dryRun ? `project ${result.project} (dry run, nothing changed): ${summary}` : `project ${result.project}: ${summary}`);
}
