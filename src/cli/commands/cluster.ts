/** `hush service ...`, `hush node ...`, `hush join-token`. */
import { Command, InvalidArgumentError } from 'commander';
import * as acl from '../../acl/index.js';
import type { ApiClient } from '../client.js';
import { collectKeyValue } from '../input.js';
import { ago } from '../output.js';
import { inspectCommand, listCommand, removeCommand } from './object-commands.js';
// Types only: erased at build, so the CLI loads nothing of the store or the API.
import type { NodeStatus } from '../../api/index.js';
import type { NodeRecord as StoredNode, ServiceRecord } from '../../store/index.js';

/** A node as GET /v1/nodes shows it: `labels` set by an admin on the node's name, `engineLabels` reported by the node itself. */
type NodeRecord = StoredNode & { labels: Record<string, string>; status: NodeStatus };

const collect = (value: string, previous: string[] = []) => [...previous, value];
const enc = encodeURIComponent;

export function serviceCommand(client: () => Promise<ApiClient>): Command {
  const service = new Command('service').description('manage services: which secrets they get, and where they may run');

  service
    .command('create')
    .description('create a service granted secrets')
    .argument('<name>', 'service name')
    .option('--secret <spec>', 'grant a secret: SRC[,target=T,uid=U,gid=G,mode=M] (repeatable)', collect, [])
    .option('--constraint <expr>', 'placement: node.labels.K==V (set by an admin), engine.labels.K==V, node.hostname!=H (self-reported), ... (repeatable)', collect, [])
    .action(async (name: string, opts: { secret: string[]; constraint: string[] }) => {
      const grants = opts.secret.map((spec) => {
        try {
          return acl.parseGrantSpec(spec);
        } catch (err) {
          throw new InvalidArgumentError((err as Error).message);
        }
      });
      await (await client()).post('/v1/services', { name, grants, constraints: opts.constraint });
      console.log(name);
    });

  service
    .command('update')
    .description('change a service\'s grants and constraints in one step (as docker service update); running containers get the change')
    .argument('<name>', 'service name')
    .option('--secret-add <spec>', 'grant a secret: SRC[,target=T,uid=U,gid=G,mode=M] (repeatable)', collect, [])
    .option('--secret-rm <secret>', 'take back every grant of this secret (repeatable; applied before --secret-add)', collect, [])
    .option('--constraint-add <expr>', 'add a placement constraint (repeatable)', collect, [])
    .option('--constraint-rm <expr>', 'remove a placement constraint (repeatable)', collect, [])
    .action(async (name: string, opts: { secretAdd: string[]; secretRm: string[]; constraintAdd: string[]; constraintRm: string[] }, command: Command) => {
      if (opts.secretAdd.length + opts.secretRm.length + opts.constraintAdd.length + opts.constraintRm.length === 0) {
        command.error('error: nothing to update: give --secret-add, --secret-rm, --constraint-add or --constraint-rm', { exitCode: 2 });
      }
      const secretAdd = opts.secretAdd.map((spec) => {
        try {
          return acl.parseGrantSpec(spec);
        } catch (err) {
          return command.error(`error: ${(err as Error).message}`, { exitCode: 2 });
        }
      });
      await (await client()).post(`/v1/services/${enc(name)}/update`, { secretAdd, secretRm: opts.secretRm, constraintAdd: opts.constraintAdd, constraintRm: opts.constraintRm });
      console.log(name);
    });

  const kind = { plural: 'services', collection: '/v1/services', argument: 'service names' };
  service.addCommand(
    listCommand<ServiceRecord>(client, kind, ['NAME', 'SECRETS', 'CONSTRAINTS', 'UPDATED'], (s) => [
      s.name,
      s.grants.map((g) => (g.source === g.target ? g.source : `${g.source}→${g.target}`)).join(',') || '-',
      s.constraints.join(',') || '-',
      ago(s.updatedAt),
    ]),
  );
  service.addCommand(inspectCommand(client, kind));
  service.addCommand(removeCommand(client, kind));
  return service;
}

export function nodeCommand(client: () => Promise<ApiClient>): Command {
  const node = new Command('node').description('manage the nodes that run agents');

  const kind = { plural: 'nodes', collection: '/v1/nodes', argument: 'node ids or names' };
  const pairs = (labels: Record<string, string>) => Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',') || '-';
  node.addCommand(
    listCommand<NodeRecord>(client, kind, ['ID', 'NAME', 'STATUS', 'REPLICA', 'LABELS', 'ENGINE LABELS', 'CONTAINERS', 'HEARTBEAT', 'ACKED'], (n) => [
      n.id,
      n.name,
      n.status.state,
      n.status.replica ?? '-',
      pairs(n.labels),
      pairs(n.engineLabels),
      String(n.containers.length),
      n.status.lastHeartbeat ? ago(n.status.lastHeartbeat) : '-',
      n.status.ackedRevision === undefined ? '-' : String(n.status.ackedRevision),
    ]),
  );
  node.addCommand(inspectCommand(client, kind));

  node
    .command('label')
    .description('set node.labels (K=V) or remove them (K-) on a node name; they stay with the name when its node rejoins')
    .argument('<node>', 'node name (or the id of a node holding it)')
    .argument('<labels...>', 'K=V to set, K- to remove (as kubectl label)', parseLabelChange)
    .action(async (name: string, change: LabelChange) => {
      const result = await (await client()).post<{ name: string; labels: Record<string, string> }>(`/v1/nodes/${enc(name)}/labels`, change);
      console.log(`${result.name} ${pairs(result.labels)}`);
    });

  node.addCommand(removeCommand(client, kind, 'remove nodes and revoke their certificates (their sessions close at once)'));
  return node;
}

interface LabelChange {
  add: Record<string, string>;
  remove: string[];
}

/** One `K=V` or `K-` argument of `hush node label`, folded into the change; a bad one is a usage error that commander reports. */
function parseLabelChange(arg: string, previous: LabelChange | undefined): LabelChange {
  const change = previous ?? { add: {}, remove: [] };
  if (arg.endsWith('-') && !arg.includes('=')) {
    if (arg === '-') throw new InvalidArgumentError('"-" alone names no label: write K- to remove label K.');
    return { ...change, remove: [...change.remove, arg.slice(0, -1)] };
  }
  return { ...change, add: collectKeyValue('a label')(arg, change.add) };
}

export function joinTokenCommand(client: () => Promise<ApiClient>): Command {
  return new Command('join-token')
    .description(
      'print the token agents join with (--rotate replaces it; joined nodes are unaffected). The cluster-wide token joins fresh node names only; ' +
        '--node NAME prints the token bound to that name, the only one that joins a name with admin labels, its own token, or a connected node',
    )
    .option('--node <name>', 'the token bound to this node name (made on first use); the agent joins with it and --name NAME')
    .option('--rotate', 'make a new token; the old one stops working for new joins')
    .action(async (opts: { node?: string; rotate?: boolean }) => {
      const c = await client();
      const body = opts.node === undefined ? {} : { node: opts.node };
      const { token } =
        opts.rotate ? await c.post<{ token: string }>('/v1/join-token/rotate', body)
        : opts.node !== undefined ? await c.post<{ token: string }>('/v1/join-token', body)
        : await c.get<{ token: string }>('/v1/join-token');
      console.log(token);
    });
}
