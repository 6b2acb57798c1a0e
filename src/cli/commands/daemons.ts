/** `hush store` and `hush up`: the long-running processes. */
import { Command } from 'commander';
import { join } from 'node:path';
import { DEFAULT_ADMIN_SOCKET, hushHome } from '../../home/index.js';

interface StoreFlags {
  data: string;
  socket: string;
  listen?: string;
  admin?: string;
  nodeCertTtl?: number;
  home?: string;
  autolock?: boolean;
  unlockKeyFile?: string;
  maxValueBytes?: number;
}

export function storeCommand(): Command {
  return new Command('store')
    .description('run the central store: encrypted, durable secrets behind the admin API')
    .requiredOption('--data <dir>', 'data directory (write-ahead log, snapshots, key file)')
    .option('--socket <path>', 'admin unix socket (root-only)', DEFAULT_ADMIN_SOCKET)
    .option('--listen <host:port>', 'node protocol (gRPC, mutual TLS) listener', '0.0.0.0:2477')
    .option('--admin <host:port>', 'admin HTTPS listener (client certificate required); "" turns it off', '127.0.0.1:2476')
    .option('--node-cert-ttl <seconds>', 'lifetime of node certificates (agents renew at half-life)', (v) => Number.parseInt(v, 10), 86400)
    .option('--home <dir>', 'HUSH_HOME to record how clients reach this store (default $HUSH_HOME or ~/.hush)')
    .option('--autolock', 'derive the key-encryption key from an unlock key that is shown once and must be given after each restart')
    .option('--unlock-key-file <file>', 'unlock an autolocked store at start with the key in this file')
    .option('--max-value-bytes <n>', 'largest secret value accepted', (v) => Number.parseInt(v, 10))
    .action(async (flags: StoreFlags) => {
      await runUntilSignal(flags.data, flags);
    });
}

export function upCommand(): Command {
  return new Command('up')
    .description('run a single-node hush: the store (and its agent) on this machine')
    .option('--home <dir>', 'state directory (default $HUSH_HOME or ~/.hush)')
    .option('--socket <path>', 'admin unix socket', DEFAULT_ADMIN_SOCKET)
    .action(async (flags: { home?: string; socket: string }) => {
      const home = hushHome(flags.home);
      await runUntilSignal(join(home, 'data'), { ...flags, home }, () => quickstart(home, flags.socket));
    });
}

async function runUntilSignal(dataDir: string, flags: Omit<StoreFlags, 'data'>, onReady?: () => void): Promise<void> {
  const { startStore } = await import('../../server/index.js');
  const running = await startStore({
    dataDir,
    socket: flags.socket,
    home: hushHome(flags.home),
    autolock: flags.autolock,
    listen: flags.listen,
    admin: flags.admin,
    nodeCertSeconds: flags.nodeCertTtl,
    unlockKeyFile: flags.unlockKeyFile,
    maxValueBytes: flags.maxValueBytes,
  });
  onReady?.();
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await running.close();
}

function quickstart(home: string, socket: string): void {
  const hostHint = socket === DEFAULT_ADMIN_SOCKET ? '' : `  export HUSH_HOST=unix://${socket}\n`;
  process.stdout.write(
    `\nhush is up. State in ${home}; admin socket ${socket}.\n\nTry it from another terminal:\n${hostHint}` +
      `  printf 's3cret' | hush secret create db_password -\n  hush secret ls\n  hush secret inspect db_password\n\nCtrl-C stops it.\n`,
  );
}
