/** `hush store` and `hush up`: the long-running processes. */
import { Command } from 'commander';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ADMIN_SOCKET, DEFAULT_AGENT_SOCKET, DEFAULT_MOUNTS_DIR, hushHome, readHomeConfig, updateHomeConfig } from '../../home/index.js';
import { fuseOption, type FuseChoice } from '../input.js';

interface StoreFlags {
  socket: string;
  listen?: string;
  admin?: string;
  nodeCertTtl?: number;
  home?: string;
  autolock?: boolean;
  unlockKeyFile?: string;
  maxValueBytes?: number;
}

interface UpFlags extends StoreFlags {
  agentSocket: string;
  mounts: string;
  fuse?: FuseChoice;
}

const toInt = (v: string) => Number.parseInt(v, 10);

/** The listener flags `hush store` and `hush up` share. */
function withStoreListeners(command: Command, nodeListenDefault: string): Command {
  return command
    .option('--socket <path>', 'admin unix socket (root-only)', DEFAULT_ADMIN_SOCKET)
    .option('--listen <host:port>', 'node protocol (gRPC, mutual TLS) listener', nodeListenDefault)
    .option('--admin <host:port>', 'admin HTTPS listener (client certificate required); "" turns it off', '127.0.0.1:2476')
    .option('--max-value-bytes <n>', 'largest secret value accepted', toInt);
}

export function storeCommand(): Command {
  return withStoreListeners(
    new Command('store')
      .description('run the central store: encrypted, durable secrets behind the admin API and the node protocol')
      .requiredOption('--data <dir>', 'data directory (write-ahead log, snapshots, key file)'),
    '0.0.0.0:2477',
  )
    .option('--node-cert-ttl <seconds>', 'lifetime of node certificates (agents renew at half-life)', toInt, 86400)
    .option('--home <dir>', 'HUSH_HOME to record how clients reach this store (default $HUSH_HOME or ~/.hush)')
    .option('--autolock', 'derive the key-encryption key from an unlock key that is shown once and must be given after each restart')
    .option('--unlock-key-file <file>', 'unlock an autolocked store at start with the key in this file')
    .action(async (flags: StoreFlags & { data: string }) => {
      const running = await startStoreFrom(flags.data, flags);
      // Once unlocked, a store whose listeners cannot start (port taken, ...) stops instead of half-running.
      const failed = running.clusterReady.then(
        () => new Promise<never>(() => {}),
        (err: unknown) => err as Error,
      );
      const outcome = await Promise.race([untilSignal(), failed]);
      await running.close();
      if (outcome instanceof Error) throw outcome;
    });
}

export function upCommand(): Command {
  // Single node: the node protocol only needs to be reachable from this machine.
  return withStoreListeners(new Command('up').description('run a single-node hush: the store and an agent joined to it, on this machine'), '127.0.0.1:2477')
    .option('--home <dir>', 'state directory (default $HUSH_HOME or ~/.hush)')
    .option('--agent-socket <path>', 'the agent\'s runtime API socket (`hush run` talks to it)', DEFAULT_AGENT_SOCKET)
    .option('--mounts <dir>', 'where per-container secret mounts go', DEFAULT_MOUNTS_DIR)
    .addOption(fuseOption())
    .action(async (flags: UpFlags) => {
      const home = hushHome(flags.home);
      const store = await startStoreFrom(join(home, 'data'), { ...flags, home });
      const cluster = await store.clusterReady.catch(async (err: unknown) => {
        await store.close();
        throw err;
      });
      // The agent joins anew at each start (it keeps no identity on disk); the node of the previous run is ours to retire.
      const previous = (await readHomeConfig(home)).upNodeId;
      if (previous) await store.store.nodes.revoke(previous).catch(() => undefined);
      const { FuseMounts, startAgent } = await import('../../agent/index.js');
      const { log } = await import('../../log/index.js');
      const agent = await startAgent({
        store: cluster.nodeAddress,
        token: cluster.joinToken(),
        name: hostname(),
        socket: flags.agentSocket,
        mounts: await FuseMounts.create(flags.mounts, log.child({ component: 'agent' }), flags.fuse),
        debug: process.env.HUSH_AGENT_DEBUG === '1',
      }).catch(async (err: unknown) => {
        await store.close();
        throw err;
      });
      await updateHomeConfig(home, { agentSocket: flags.agentSocket, upNodeId: agent.nodeId });
      quickstart(home, flags.socket);
      await untilSignal();
      // Agent first: it unmounts every container's secrets before the store goes.
      await agent.close();
      await store.close();
    });
}

async function startStoreFrom(dataDir: string, flags: StoreFlags) {
  const { startStore } = await import('../../server/index.js');
  return startStore({
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
}

function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

function quickstart(home: string, socket: string): void {
  const hostHint = socket === DEFAULT_ADMIN_SOCKET ? '' : `  export HUSH_HOST=unix://${socket}\n`;
  process.stdout.write(
    `\nhush is up: a store and an agent on this machine. State in ${home}.\n\nTry it from another terminal (as root):\n${hostHint}` +
      '  printf s3cret | hush secret create db_password -\n' +
      '  hush service create db --secret db_password,target=password,mode=0400\n' +
      '  hush run --service db -- cat /run/secrets/password\n\n' +
      'Ctrl-C stops both and removes every secret mount.\n',
  );
}
