/** `hush agent`: the node agent, one per machine that runs containers. */
import { Command } from 'commander';
import { DEFAULT_AGENT_SOCKET, DEFAULT_MOUNTS_DIR } from '../../home/index.js';
import { collectKeyValue, dockerPluginFrom, dockerPluginOptions, fuseOption, type FuseChoice } from '../input.js';


interface AgentFlags {
  store: string;
  token?: string;
  name?: string;
  label: Record<string, string>;
  socket: string;
  mounts: string;
  fuse?: FuseChoice;
  dockerPlugin: string;
  dockerHost: string;
}


export function agentCommand(): Command {
  const command = new Command('agent')
    .description('run the node agent: join the store with a token, hold entitled secrets in RAM only, serve containers')
    .requiredOption('--store <host:port>', "the store's node-protocol address (`hush store --listen`); replicas sharing etcd: H:P,H:P,... (fails over in turn)")
    // Also from the environment: a token on the command line is visible to every user in `ps`.
    .option('--token <token>', 'join token from `hush join-token` (default: $HUSH_JOIN_TOKEN)')
    .option('--name <name>', 'node name (default: the hostname); a name with admin labels needs its own token (`hush join-token --node NAME`)')
    // Self-reported: anyone with a join token can claim any label, so these never count as node.labels.
    .option('--label <key=value>', 'self-reported engine label, matched by engine.labels.K==V constraints, never node.labels (repeatable)', collectKeyValue('--label'), {})
    .option('--socket <path>', 'runtime API unix socket (root-only)', DEFAULT_AGENT_SOCKET)
    .option('--mounts <dir>', 'where per-container secret mounts go (root-only directory)', DEFAULT_MOUNTS_DIR)
    .addOption(fuseOption());
  for (const option of dockerPluginOptions()) command.addOption(option);
  command.action(async (flags: AgentFlags) => {
    const token = flags.token ?? process.env.HUSH_JOIN_TOKEN;
    if (!token) command.error("error: a join token is required: pass --token or set HUSH_JOIN_TOKEN (get one with `hush join-token` on the store's host)");
    const { FuseMounts, startAgent } = await import('../../agent/index.js');
    const { log } = await import('../../log/index.js');
    const agent = await startAgent({
      mounts: await FuseMounts.create(flags.mounts, log, flags.fuse),
      store: flags.store,
      token: token!,
      name: flags.name,
      labels: flags.label,
      socket: flags.socket,
      // Debug routes expose names and versions only, never values; still, off unless asked for.
      debug: process.env.HUSH_AGENT_DEBUG === '1',
      dockerPlugin: dockerPluginFrom(flags),
    });
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await agent.close();
  });
  return command;
}
