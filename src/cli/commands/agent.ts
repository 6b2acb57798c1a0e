/** `hush agent`: the node agent, one per machine that runs containers. */
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_AGENT_SOCKET } from '../../home/index.js';

interface AgentFlags {
  store: string;
  token?: string;
  name?: string;
  label: Record<string, string>;
  socket: string;
}

export function agentCommand(): Command {
  const command = new Command('agent')
    .description('run the node agent: join the store with a token, hold entitled secrets in RAM only, serve containers')
    .requiredOption('--store <host:port>', "the store's node-protocol address (`hush store --listen`)")
    // Also from the environment: a token on the command line is visible to every user in `ps`.
    .option('--token <token>', 'join token from `hush join-token` (default: $HUSH_JOIN_TOKEN)')
    .option('--name <name>', 'display name of this node (default: the hostname)')
    .option('--label <key=value>', 'node label for placement constraints (repeatable)', collectLabel, {})
    .option('--socket <path>', 'runtime API unix socket (root-only)', DEFAULT_AGENT_SOCKET)
    .action(async (flags: AgentFlags) => {
      const token = flags.token ?? process.env.HUSH_JOIN_TOKEN;
      if (!token) command.error("error: a join token is required: pass --token or set HUSH_JOIN_TOKEN (get one with `hush join-token` on the store's host)");
      const { startAgent } = await import('../../agent/index.js');
      const agent = await startAgent({
        store: flags.store,
        token: token!,
        name: flags.name,
        labels: flags.label,
        socket: flags.socket,
        // Debug routes expose names and versions only, never values; still, off unless asked for.
        debug: process.env.HUSH_AGENT_DEBUG === '1',
      });
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await agent.close();
    });
  return command;
}

function collectLabel(text: string, labels: Record<string, string>): Record<string, string> {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`"${text}" is not KEY=VALUE`);
  const key = text.slice(0, eq);
  if (Object.hasOwn(labels, key)) throw new InvalidArgumentError(`label "${key}" is given twice`);
  return { ...labels, [key]: text.slice(eq + 1) };
}
