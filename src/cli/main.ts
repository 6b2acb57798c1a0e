/**
 * The `hush` command. Exit codes: 0 ok, 1 failure (one `error: ...` line on
 * stderr), 2 usage error. Heavy modules (the store, crypto) load only in the
 * commands that need them, so client commands start fast.
 */
import { Command, CommanderError } from 'commander';
import { ApiClient } from './client.js';
import { agentCommand } from './commands/agent.js';
import { auditCommand } from './commands/audit.js';
import { upCommand, storeCommand } from './commands/daemons.js';
import { caCommand } from './commands/ca.js';
import { certCommand } from './commands/certs.js';
import { joinTokenCommand, nodeCommand, serviceCommand } from './commands/cluster.js';
import { composeCommand } from './commands/compose.js';
import { deployCommand, stackCommand } from './commands/deploy.js';
import { keyCommand, unlockCommand } from './commands/keys.js';
import { runCommand } from './commands/run.js';
import { secretCommand } from './commands/secret.js';

function buildProgram(): Command {
  const program = new Command('hush')
    .description('secrets for containers: an encrypted store, node agents, and files at /run/secrets')
    .option('-H, --host <host>', 'store to talk to: unix:///path/admin.sock (default: $HUSH_HOST, then $HUSH_HOME, then /run/hush/admin.sock)')
    .version('0.1.0')
    .enablePositionalOptions();

  const client = () => ApiClient.connect({ host: program.opts<{ host?: string }>().host });
  program.addCommand(upCommand());
  program.addCommand(storeCommand());
  program.addCommand(agentCommand());
  program.addCommand(unlockCommand(client));
  program.addCommand(secretCommand(client));
  program.addCommand(serviceCommand(client));
  program.addCommand(deployCommand(client));
  program.addCommand(stackCommand(client));
  program.addCommand(composeCommand(client));
  program.addCommand(nodeCommand(client));
  program.addCommand(joinTokenCommand(client));
  program.addCommand(certCommand(client));
  program.addCommand(runCommand());
  program.addCommand(keyCommand(client));
  program.addCommand(caCommand(client));
  program.addCommand(auditCommand(client));
  applyToAll(program, (command) => command.exitOverride().showHelpAfterError('(run with --help for usage)'));
  return program;
}

function applyToAll(command: Command, apply: (c: Command) => void): void {
  apply(command);
  for (const sub of command.commands) applyToAll(sub, apply);
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed the message already; help and --version exit 0.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    process.stderr.write(`error: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}

await main();
