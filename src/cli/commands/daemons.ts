/** `hush store` and `hush up`: the long-running processes. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ADMIN_SOCKET, DEFAULT_AGENT_SOCKET, DEFAULT_MOUNTS_DIR, hushHome, readHomeConfig, updateHomeConfig } from '../../home/index.js';
import { certTtlOption, dockerPluginFrom, dockerPluginOptions, fuseOption, type FuseChoice } from '../input.js';

interface StoreFlags {
  socket: string;
  listen?: string;
  admin?: string;
  nodeCertTtl?: number;
  adminCertTtl?: number;
  home?: string;
  autolock?: boolean;
  unlockKeyFile?: string;
  maxValueBytes?: number;
  keepVersions?: number;
  nodeMaxMessage?: number;
  nodeHandshakeTimeout?: number;
  nodeIdleTimeout?: number;
  nodeMaxConnections?: number;
  nodeMaxConnectionsPerAddress?: number;
  nodeMaxJoins?: number;
  nodeMaxQueuedJoins?: number;
  nodeJoinFailures?: number;
  nodeJoinLockout?: number;
  adminAuthFailures?: number;
  adminAuthLockout?: number;
  nodeMaxCallsPerNode?: number;
  nodeMaxStreams?: number;
  nodeMaxContainers?: number;
  heartbeatPeriod?: number;
  backend?: 'embedded' | 'etcd';
  etcdEndpoints?: string[];
  etcdPrefix?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdCa?: string;
  replicaId?: string;
  leaderLease?: number;
}

interface UpFlags extends StoreFlags {
  agentSocket: string;
  mounts: string;
  fuse?: FuseChoice;
  dockerPlugin: string;
  dockerHost: string;
}

const toInt = (v: string) => Number.parseInt(v, 10);

/** A count where 0 turns the limit off. */
function wholeNumber(value: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError(`must be a whole number from 0, not "${value}".`);
  return Number(value);
}

function positiveInt(value: string): number {
  if (!/^[1-9][0-9]*$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError(`must be a whole number above 0, not "${value}".`);
  return Number(value);
}

/** The node-port limits (src/protocol/node-limits.ts); defaults and reasons in docs/security.md, "Node port limits". */
const NODE_LIMIT_FLAGS: [flag: string, description: string][] = [
  ['--node-max-message <bytes>', 'largest message the store accepts from an agent (default 1 MiB)'],
  ['--node-handshake-timeout <ms>', 'close a node-port connection that makes no call this soon after connecting (default 10000)'],
  ['--node-idle-timeout <ms>', 'close a node-port connection with no call open this long (default 300000)'],
  ['--node-max-connections <n>', 'node-port connections in all, kept within the open-file limit (default 12000)'],
  ['--node-max-connections-per-address <n>', 'node-port connections from one IP address; raise for many nodes behind one NAT (default 64)'],
  ['--node-max-joins <n>', 'Join calls served at once (default 32)'],
  ['--node-max-queued-joins <n>', 'Join calls waiting for a slot before more are refused (default 1024)'],
  ['--node-max-calls-per-node <n>', 'calls one node may have open at once (default 4)'],
  ['--node-max-streams <n>', 'concurrent HTTP/2 streams per node-port connection (default 8)'],
  ['--node-max-containers <n>', 'containers one node may run with secrets (default 1000)'],
  ['--node-join-failures <n>', 'joins with a refused token from one address within a minute before its joins are refused for a while (default 10)'],
  ['--node-join-lockout <ms>', 'how long joins from such an address are refused (default 60000)'],
];

/** The listener flags `hush store` and `hush up` share. */
function withStoreListeners(command: Command, nodeListenDefault: string): Command {
  return command
    .option('--socket <path>', 'admin unix socket (root-only)', DEFAULT_ADMIN_SOCKET)
    .option('--listen <host:port>', 'node protocol (gRPC, mutual TLS) listener', nodeListenDefault)
    .option('--admin <host:port>', 'admin HTTPS listener (client certificate required); "" turns it off', '127.0.0.1:2476')
    .option('--max-value-bytes <n>', 'largest secret value accepted', toInt)
    .option('--keep-versions <n>', 'versions each secret keeps unless it sets its own (--keep); older ones are destroyed (default 16, at most 1000)', positiveInt)
    // Defaults and reasons in docs/security.md, "Admin listener limits" (src/http/auth-failures.ts).
    .option('--admin-auth-failures <n>', 'failed client authentications on the admin HTTPS listener (bad or no certificate, revoked or unknown one) from one address within a minute before its connections are refused for a while; 0 turns this off (default 20)', wholeNumber)
    .option('--admin-auth-lockout <ms>', 'how long admin HTTPS connections from such an address are refused (default 30000)', positiveInt)
    .addOption(certTtlOption('--admin-cert-ttl <duration>', 'lifetime of the admin certificate the store keeps in HUSH_HOME and renews when a third is left, e.g. 30d, 12h (default 30d, at most 90d)'));
}

function withNodeLimits(command: Command): Command {
  for (const [flag, description] of NODE_LIMIT_FLAGS) command.option(flag, description, positiveInt);
  return command;
}

export function storeCommand(): Command {
  return withNodeLimits(withStoreListeners(
    new Command('store')
      .description('run the central store: encrypted, durable secrets behind the admin API and the node protocol')
      // Not required by commander: it would be required of `hush store migrate` too (checked in the action).
      .option('--data <dir>', 'data directory (write-ahead log, snapshots, key file; with --backend etcd, the key file only)'),
    '0.0.0.0:2477',
  ))
    .addOption(new Option('--backend <kind>', 'where the store keeps its records: embedded (the data directory) or etcd (shared by replicas)').choices(['embedded', 'etcd']).default('embedded'))
    .option('--etcd-endpoints <urls>', 'etcd client URLs, comma-separated (with --backend etcd)', parseEndpoints)
    .option('--etcd-prefix <prefix>', 'key prefix of this store in etcd (default hush/)')
    .option('--etcd-ca <file>', 'CA certificate that signed the etcd members\' certificates (https endpoints)')
    .option('--etcd-cert <file>', 'client certificate for etcd, when it asks for one')
    .option('--etcd-key <file>', 'key of --etcd-cert')
    .option('--replica-id <id>', 'this replica\'s name among those sharing etcd (default: made once, kept in --data)')
    // Hidden: for tests that need a dead leader replaced quickly. Seconds a dead leader keeps the singleton-jobs lease.
    .addOption(new Option('--leader-lease <seconds>', 'lease of the singleton-jobs election (default 10)').argParser(positiveInt).hideHelp())
    .option('--node-cert-ttl <seconds>', 'lifetime of node certificates (agents renew at half-life)', toInt, 86400)
    .option('--home <dir>', 'HUSH_HOME to record how clients reach this store (default $HUSH_HOME or ~/.hush)')
    .option('--autolock', 'derive the key-encryption key from an unlock key that is shown once and must be given after each restart')
    .option('--unlock-key-file <file>', 'unlock an autolocked store at start with the key in this file')
    // Hidden: for tests that need a node to be judged down quickly. The store tells its agents the period; 100 to 60000.
    .addOption(new Option('--heartbeat-period <ms>', 'how often agents send a heartbeat (default 5000)').argParser(positiveInt).hideHelp())
    .addCommand(storeMigrateCommand())
    .action(async (flags: StoreFlags & { data?: string }, command: Command) => {
      if (!flags.data) command.error("error: required option '--data <dir>' not specified", { exitCode: 2 });
      try {
        await etcdOptionsFrom(flags);
      } catch (err) {
        if (err instanceof InvalidArgumentError) command.error(`error: ${err.message}`, { exitCode: 2 });
        throw err;
      }
      const running = await startStoreFrom(flags.data!, flags);
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

/** `hush store migrate`: an embedded store's data directory into an empty etcd prefix (src/store/migrate.ts). */
export function storeMigrateCommand(): Command {
  return new Command('migrate')
    .description('copy a stopped embedded store (its data directory) into an empty etcd prefix, then verify the copy')
    .requiredOption('--from <dir>', 'the data directory of the embedded store (stop that store first)')
    .option('--etcd-endpoints <urls>', 'etcd client URLs, comma-separated', parseEndpoints)
    .option('--etcd-prefix <prefix>', 'key prefix of the store in etcd (default hush/)')
    .option('--etcd-ca <file>', 'CA certificate that signed the etcd members\' certificates (https endpoints)')
    .option('--etcd-cert <file>', 'client certificate for etcd, when it asks for one')
    .option('--etcd-key <file>', 'key of --etcd-cert')
    .option('--unlock-key-file <file>', 'the unlock key of an autolocked store')
    .action(async (_own: unknown, command: Command) => {
      // The etcd flags share their names with `hush store`'s, so commander may hand them to the parent: read both.
      const flags = command.optsWithGlobals<Omit<StoreFlags, 'backend' | 'socket'> & { from: string }>();
      let etcd;
      try {
        etcd = await etcdOptionsFrom({ ...flags, backend: 'etcd' });
      } catch (err) {
        if (err instanceof InvalidArgumentError) command.error(`error: ${err.message}`, { exitCode: 2 });
        throw err;
      }
      const { readFile } = await import('node:fs/promises');
      const { migrateToEtcd } = await import('../../store/index.js');
      const unlockKey = flags.unlockKeyFile ? await readFile(flags.unlockKeyFile, 'utf8') : undefined;
      const result = await migrateToEtcd({ dataDir: flags.from, etcd: etcd!, unlockKey });
      process.stdout.write(
        `migrated ${result.keys} keys (${result.secrets} secrets, ${result.services} services, ${result.nodes} nodes) to etcd; verified every key and value.\n` +
          `Start the replicas with --backend etcd and the same endpoints and prefix; give each one ${flags.from}/master.key (or its unlock key).\n`,
      );
    });
}

export function upCommand(): Command {
  // Single node: the node protocol only needs to be reachable from this machine.
  const up = withNodeLimits(withStoreListeners(new Command('up').description('run a single-node hush: the store and an agent joined to it, on this machine'), '127.0.0.1:2477'))
    .option('--home <dir>', 'state directory (default $HUSH_HOME or ~/.hush)')
    .option('--agent-socket <path>', 'the agent\'s runtime API socket (`hush run` talks to it)', DEFAULT_AGENT_SOCKET)
    .option('--mounts <dir>', 'where per-container secret mounts go', DEFAULT_MOUNTS_DIR)
    .addOption(fuseOption());
  for (const option of dockerPluginOptions()) up.addOption(option);
  return up
    .action(async (flags: UpFlags) => {
      const home = hushHome(flags.home);
      const daemon = await startStoreFrom(join(home, 'data'), { ...flags, home });
      const cluster = await daemon.clusterReady.catch(async (err: unknown) => {
        await daemon.close();
        throw err;
      });
      // The agent joins anew at each start (it keeps no identity on disk); the node of the previous run is ours to retire.
      const previous = (await readHomeConfig(home)).upNodeId;
      if (previous) await daemon.retireNode(previous).catch(() => undefined);
      const { FuseMounts, startAgent } = await import('../../agent/index.js');
      const { log } = await import('../../log/index.js');
      const name = hostname();
      const agent = await startAgent({
        store: cluster.nodeAddress,
        // Its name's own token: the name keeps the labels an admin gave it across restarts, and no one with the cluster-wide token can take it.
        token: await cluster.nodeJoinToken(name),
        name,
        socket: flags.agentSocket,
        mounts: await FuseMounts.create(flags.mounts, log.child({ component: 'agent' }), flags.fuse),
        debug: process.env.HUSH_AGENT_DEBUG === '1',
        dockerPlugin: dockerPluginFrom(flags),
      }).catch(async (err: unknown) => {
        await daemon.close();
        throw err;
      });
      await updateHomeConfig(home, { agentSocket: flags.agentSocket, upNodeId: agent.nodeId, dockerPlugin: flags.dockerPlugin });
      quickstart(home, flags.socket, flags.dockerPlugin);
      await untilSignal();
      // Agent first: it unmounts every container's secrets before the store goes.
      await agent.close();
      await daemon.close();
    });
}

/** etcd client URLs: http(s)://HOST:PORT, comma-separated. */
export function parseEndpoints(value: string): string[] {
  const urls = value.split(',').map((u) => u.trim()).filter(Boolean);
  if (urls.length === 0) throw new InvalidArgumentError('give at least one etcd client URL, e.g. http://127.0.0.1:2379.');
  for (const url of urls) {
    if (!/^https?:\/\/[^/\s]+:\d{1,5}\/?$/.test(url)) throw new InvalidArgumentError(`"${url}" is not an etcd client URL (http://HOST:PORT or https://HOST:PORT).`);
  }
  return urls;
}

/** The etcd connection the flags describe, or undefined for the embedded engine; a usage error when they contradict. */
export async function etcdOptionsFrom(flags: Pick<StoreFlags, 'backend' | 'etcdEndpoints' | 'etcdPrefix' | 'etcdCa' | 'etcdCert' | 'etcdKey'>) {
  const etcdFlags = flags.etcdEndpoints ?? flags.etcdPrefix ?? flags.etcdCa ?? flags.etcdCert ?? flags.etcdKey;
  if (flags.backend !== 'etcd') {
    if (etcdFlags !== undefined) throw new InvalidArgumentError('--etcd-* options need --backend etcd.');
    return undefined;
  }
  if (!flags.etcdEndpoints) throw new InvalidArgumentError('give the etcd cluster with --etcd-endpoints URL[,URL...].');
  if ((flags.etcdCert === undefined) !== (flags.etcdKey === undefined)) throw new InvalidArgumentError('--etcd-cert and --etcd-key go together.');
  if ((flags.etcdCert ?? flags.etcdCa) !== undefined && flags.etcdEndpoints.some((u) => u.startsWith('http://'))) {
    throw new InvalidArgumentError('TLS options for etcd need https:// endpoints.');
  }
  const { readFile } = await import('node:fs/promises');
  const read = async (file: string | undefined) => (file === undefined ? undefined : readFile(file));
  const tls = flags.etcdCa !== undefined || flags.etcdCert !== undefined ? { ca: await read(flags.etcdCa), cert: await read(flags.etcdCert), key: await read(flags.etcdKey) } : undefined;
  return { endpoints: flags.etcdEndpoints, prefix: flags.etcdPrefix, tls };
}

async function startStoreFrom(dataDir: string, flags: StoreFlags) {
  const { startStore } = await import('../../server/index.js');
  return startStore({
    dataDir,
    etcd: await etcdOptionsFrom(flags),
    replicaId: flags.replicaId,
    leaderLeaseSeconds: flags.leaderLease,
    socket: flags.socket,
    home: hushHome(flags.home),
    autolock: flags.autolock,
    listen: flags.listen,
    admin: flags.admin,
    nodeCertSeconds: flags.nodeCertTtl,
    adminCertSeconds: flags.adminCertTtl,
    unlockKeyFile: flags.unlockKeyFile,
    maxValueBytes: flags.maxValueBytes,
    keepVersions: flags.keepVersions,
    heartbeatPeriodMs: flags.heartbeatPeriod,
    nodeLimits: {
      maxMessageBytes: flags.nodeMaxMessage,
      handshakeTimeoutMs: flags.nodeHandshakeTimeout,
      idleTimeoutMs: flags.nodeIdleTimeout,
      maxConnections: flags.nodeMaxConnections,
      maxConnectionsPerAddress: flags.nodeMaxConnectionsPerAddress,
      maxConcurrentJoins: flags.nodeMaxJoins,
      maxQueuedJoins: flags.nodeMaxQueuedJoins,
      maxCallsPerNode: flags.nodeMaxCallsPerNode,
      maxStreamsPerConnection: flags.nodeMaxStreams,
      maxContainersPerNode: flags.nodeMaxContainers,
      maxJoinFailuresPerAddress: flags.nodeJoinFailures,
      joinLockoutMs: flags.nodeJoinLockout,
    },
    adminAuthFailures: { maxFailures: flags.adminAuthFailures, lockoutMs: flags.adminAuthLockout },
  });
}

function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

function quickstart(home: string, socket: string, dockerPlugin: string): void {
  const hostHint = socket === DEFAULT_ADMIN_SOCKET ? '' : `  export HUSH_HOST=unix://${socket}\n`;
  process.stdout.write(
    `\nhush is up: a store and an agent on this machine. State in ${home}.\n\nTry it from another terminal (as root):\n${hostHint}` +
      '  printf s3cret | hush secret create db_password -\n' +
      '  hush service create db --secret db_password,target=password,mode=0400\n' +
      '  hush run --service db -- cat /run/secrets/password\n' +
      (dockerPlugin === 'off' ? '' : `  docker run --rm --mount type=volume,volume-driver=${dockerPlugin},source=db,target=/run/secrets,readonly busybox cat /run/secrets/password\n`) +
      '\n' +
      'Ctrl-C stops both and removes every secret mount.\n',
  );
}
