/**
 * The node agent, put together: join the cluster, keep one session with the
 * store, hold what it sends in sealed RAM, renew the node certificate, and
 * serve the runtime API on a root-only unix socket.
 *
 * It writes nothing to disk: the key, the certificate and the secrets live in
 * this process only; the one file it creates is its socket. After a restart
 * it joins again with its token (and gets a new node id).
 */
import { unlink } from 'node:fs/promises';
import type { Server } from 'node:http';
import { closeServer, listenOnUnixSocket } from '../http/index.js';
import { certFingerprint, parseJoinToken } from '../pki/index.js';
import { log as rootLog, type Logger } from '../log/index.js';
import { nodeClient, type NodeClient } from '../protocol/index.js';
import type { SecretSource } from '../tmpfs-mount/index.js';
import { parseStoreAddresses, type StoreAddress } from './address.js';
import type { BackoffOptions } from './backoff.js';
import { SecretCache } from './cache.js';
import { ContainerRegistry } from './containers.js';
import { startDockerPlugin, type DockerPlugin, type DockerPluginOptions } from './docker-plugin.js';
import { joinStore } from './join.js';
import { noMounts, type MountManager } from './mounts.js';
import type { NodeIdentity } from './node-identity.js';
import { CertificateRenewer } from './renewal.js';
import { ReadReporter } from './read-reports.js';
import { createRuntimeApp } from './runtime-api.js';
import { sourceForService } from './secret-source.js';
import { StoreSession, type SessionStatus } from './session.js';

export interface AgentOptions {
  /** The store's node-protocol address, HOST:PORT; several replicas (sharing etcd) comma-separated, failed over in turn. */
  store: string;
  token: string;
  name?: string;
  hostname?: string;
  labels?: Record<string, string>;
  /** Runtime API socket. */
  socket: string;
  mounts?: MountManager;
  /** Serve GET /v1/debug/held (names and versions held, never values). */
  debug?: boolean;
  log?: Logger;
  decisionTimeoutMs?: number;
  /** How long a container start waits for a (re)connecting session before answering 503. */
  connectWaitMs?: number;
  /** A session that brings no snapshot within this time is abandoned and retried. */
  snapshotTimeoutMs?: number;
  backoff?: BackoffOptions;
  /** Serve Docker's volume plugin protocol (docker-plugin.ts); absent: no plugin. */
  dockerPlugin?: DockerPluginOptions;
}

export interface AgentStatus {
  nodeId: string;
  /** The store replica the session is with (or tried next). */
  store: string;
  /** Every replica given in --store. */
  stores: string[];
  session: SessionStatus;
  /** The node certificate's end, and the fingerprint of the cluster CA the agent trusts (it changes at a CA rotation). */
  certificate: { notAfter: string; ca: string };
  containers: number;
}

export interface RunningAgent {
  readonly nodeId: string;
  readonly socket: string;
  readonly cache: SecretCache;
  readonly containers: ContainerRegistry;
  readonly session: StoreSession;
  /** The files a container of `service` sees, looked up live (for the FUSE layer). */
  sourceForService(service: string): SecretSource;
  status(): AgentStatus;
  /** Renews the node certificate now instead of at half-life. */
  renewCertificate(): Promise<void>;
  close(): Promise<void>;
}

export async function startAgent(opts: AgentOptions): Promise<RunningAgent> {
  const addresses = parseStoreAddresses(opts.store);
  parseJoinToken(opts.token); // a malformed token is a usage error; fail before touching the network
  const log = opts.log ?? rootLog.child({ component: 'agent' });
  const mounts = opts.mounts ?? noMounts;

  let identity: NodeIdentity | undefined;
  // One client per replica, for the current certificate; the session uses the one at `at`.
  let clients = new Map<number, NodeClient>();
  let at = 0;
  const address = () => addresses[at]!;
  const current = () => {
    if (!identity) throw new Error('the agent has not joined yet');
    let client = clients.get(at);
    if (!client) clients.set(at, (client = nodeClient(address(), identity)));
    return { identity, client };
  };
  // The session to a replica failed: the next attempt goes to the next replica (the session's backoff, with jitter, spaces them).
  const failover = () => {
    if (addresses.length < 2) return;
    const from = address().display;
    at = (at + 1) % addresses.length;
    log.info({ from, to: address().display }, 'trying the next store replica');
  };

  // The attempt on this replica's channel stalled: close the channel (its stuck connection goes with it) so the next attempt dials anew.
  const redial = () => {
    const stalled = clients.get(at);
    if (!stalled) return;
    clients.delete(at);
    log.info({ store: address().display }, 'no answer on the connection to the store; dialling a new one');
    stalled.close();
  };

  const cache = new SecretCache();
  const session: StoreSession = new StoreSession({
    client: () => current().client,
    cache,
    containers: () => registry.wire(), // only called once the session starts, after `registry` exists
    certificateExpiry: () => current().identity.notAfter,
    log,
    connectWaitMs: opts.connectWaitMs,
    snapshotTimeoutMs: opts.snapshotTimeoutMs,
    backoff: opts.backoff,
    onDisconnected: failover,
    onReady: () => reads.resend(),
    onStalled: redial,
  });
  // Who read what, to the store (only called once the session is ready, after `registry` exists).
  const reads = new ReadReporter({ containers: () => registry.reads(), send: (entries) => session.sendReads(entries) });
  const registry: ContainerRegistry = new ContainerRegistry({ link: session, cache, mounts, log, decisionTimeoutMs: opts.decisionTimeoutMs, reads });

  const status = (): AgentStatus => ({
    nodeId: identity?.nodeId ?? '',
    store: address().display,
    stores: addresses.map((a) => a.display),
    session: session.status(),
    certificate: { notAfter: identity?.notAfter.toISOString() ?? '', ca: identity ? certFingerprint(identity.caPem) : '' },
    containers: registry.list().length,
  });

  // The socket first: if another agent serves it, stop before joining (which would register a node for nothing).
  const app = createRuntimeApp({ containers: registry, status, ...(opts.debug ? { held: () => cache.held() } : {}) });
  const server = await listenOnUnixSocket(app, opts.socket);

  try {
    identity = await joinAny(addresses, (a) => joinStore({ address: a, token: opts.token, name: opts.name, hostname: opts.hostname, labels: opts.labels }), (index) => (at = index), log);
  } catch (err) {
    await closeRuntimeApi(server, opts.socket);
    reads.close();
    cache.destroy();
    throw err;
  }
  log.info({ nodeId: identity.nodeId, store: address().display, notAfter: identity.notAfter.toISOString(), socket: opts.socket }, 'joined the cluster');
  session.start();

  let plugin: DockerPlugin | undefined;
  if (opts.dockerPlugin) {
    try {
      plugin = await startDockerPlugin(opts.dockerPlugin, registry, log);
    } catch (err) {
      session.close();
      await closeRuntimeApi(server, opts.socket);
      registry.close();
      reads.close();
      for (const client of clients.values()) client.close();
      cache.destroy();
      throw err;
    }
  }

  const renewer = new CertificateRenewer({
    identity: () => current().identity,
    client: () => current().client,
    onRenewed: (renewed) => {
      const old = clients;
      identity = renewed;
      clients = new Map();
      session.restartSoon('node certificate renewed');
      // Calls already running on the old channels finish; new ones use the new certificate.
      for (const client of old.values()) client.close();
    },
    log,
  });
  renewer.start();

  let closing: Promise<void> | undefined;
  return {
    get nodeId() {
      return identity?.nodeId ?? '';
    },
    socket: opts.socket,
    cache,
    containers: registry,
    session,
    sourceForService: (service) => sourceForService(cache, service),
    status,
    renewCertificate: async () => {
      await renewer.renewNow();
    },
    close: () =>
      (closing ??= (async () => {
        renewer.stop();
        // The plugin first: Docker gets no new mounts from an agent that is going away.
        await plugin?.close();
        session.close();
        await closeRuntimeApi(server, opts.socket);
        registry.close();
        reads.close();
        await mounts.close();
        for (const client of clients.values()) client.close();
        cache.destroy();
        log.info({ nodeId: identity?.nodeId }, 'agent stopped');
      })()),
  };
}

/**
 * Joins through the first replica that answers: a replica that cannot be
 * reached (or is locked, or busy) is skipped; a refusal (bad token, name
 * taken) is the cluster's answer and is final.
 */
async function joinAny(addresses: StoreAddress[], join: (address: StoreAddress) => Promise<NodeIdentity>, joinedAt: (index: number) => void, log: Logger): Promise<NodeIdentity> {
  let last: unknown;
  for (const [index, address] of addresses.entries()) {
    try {
      const identity = await join(address);
      joinedAt(index);
      return identity;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (addresses.length === 1 || code === 'forbidden' || code === 'bad_request' || code === 'unauthorized') throw err;
      log.warn({ store: address.display, err: (err as Error).message }, 'could not join through this store replica; trying the next');
      last = err;
    }
  }
  throw last;
}

async function closeRuntimeApi(server: Server, socket: string): Promise<void> {
  await closeServer(server);
  await unlink(socket).catch(() => {});
}
