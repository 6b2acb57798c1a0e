/**
 * The store process: opens the data directory, serves the admin API on the
 * root-only socket at once, and, once unlocked, brings up the cluster side:
 * PKI, the node protocol listener, the admin HTTPS listener. Wiring only; the
 * parts live in store/, acl/, pki/, api/, protocol/ and http/.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { ClientConnections, createAdminApp, type ClusterControl } from '../api/index.js';
import { HushError } from '../errors/index.js';
import { updateHomeConfig } from '../home/index.js';
import { closeServer, listenHttps, listenOnUnixSocket, splitHostPort } from '../http/index.js';
import { log } from '../log/index.js';
import { StoreMetrics } from '../metrics/index.js';
import {
  DEFAULT_HEARTBEAT_PERIOD_MS,
  MAX_HEARTBEAT_PERIOD_MS,
  MIN_HEARTBEAT_PERIOD_MS,
  resolveNodeLimits,
  startNodeServer,
  type NodeLimits,
  type NodeProtocolHandler,
  type NodeServer,
} from '../protocol/index.js';
import { assertKeepVersions, PropagationTracker, type AuditEntry } from '../rotation/index.js';
import { LocalLeases, openStore, type LeaseProvider, type NodeRecord } from '../store/index.js';
import { DEFAULT_ADMIN_CERT_SECONDS } from '../rules/index.js';
import { AdminCertAuthority } from './admin-certs.js';
import { ClusterPki } from './cluster-pki.js';
import { Dispatcher } from './dispatcher.js';
import { HomeCredentials } from './home-credentials.js';
import { Membership } from './membership.js';
import { RotationScheduler } from './rotation-scheduler.js';

export interface StoreDaemonOptions {
  dataDir: string;
  socket: string;
  home: string;
  /** Node protocol listener, HOST:PORT (port 0 picks one). */
  listen?: string;
  /** Admin HTTPS listener, HOST:PORT; empty string turns it off. */
  admin?: string;
  autolock?: boolean;
  unlockKeyFile?: string;
  maxValueBytes?: number;
  /** Versions each secret keeps unless it sets its own (`--keep`); rotation's default when unset. */
  keepVersions?: number;
  /** Who runs the scheduled rotations when several store processes share a backend; the embedded store's single process by default. */
  leases?: LeaseProvider;
  nodeCertSeconds?: number;
  /** Lifetime of the admin certificate the store keeps (and renews) in HUSH_HOME. */
  adminCertSeconds?: number;
  /** Node-port limits (connections, calls, sizes); unset fields take DEFAULT_NODE_LIMITS. */
  nodeLimits?: Partial<NodeLimits>;
  /** How often agents send a heartbeat (sent to each at session start); a node is down after three missed. Default 5000. */
  heartbeatPeriodMs?: number;
  /** Where to print the one-time unlock key of a new autolocked store. */
  announce?: (text: string) => void;
}

/** The running store daemon. */
export interface RunningStore {
  /** Resolves with the bound addresses once the cluster side is up (after unlock). */
  clusterReady: Promise<{ nodeAddress: string; adminAddress?: string; joinToken: () => string; nodeJoinToken: (name: string) => Promise<string> }>;
  /** Removes a node and revokes its certificate identity (as `hush node rm`); its session closes at once. */
  retireNode(idOrName: string): Promise<NodeRecord>;
  close(): Promise<void>;
}

export const DEFAULT_NODE_LISTEN = '0.0.0.0:2477';
export const DEFAULT_ADMIN_LISTEN = '127.0.0.1:2476';

export async function startStore(options: StoreDaemonOptions): Promise<RunningStore> {
  // Every TLS listener and client of this process speaks TLS 1.3 only.
  tls.DEFAULT_MIN_VERSION = 'TLSv1.3';
  const heartbeatPeriodMs = options.heartbeatPeriodMs ?? DEFAULT_HEARTBEAT_PERIOD_MS;
  if (!Number.isInteger(heartbeatPeriodMs) || heartbeatPeriodMs < MIN_HEARTBEAT_PERIOD_MS || heartbeatPeriodMs > MAX_HEARTBEAT_PERIOD_MS) {
    throw new HushError('bad_request', `heartbeat period must be ${MIN_HEARTBEAT_PERIOD_MS} to ${MAX_HEARTBEAT_PERIOD_MS} ms, not ${heartbeatPeriodMs}`);
  }
  if (options.keepVersions !== undefined) assertKeepVersions(options.keepVersions);
  const storage = await openStore({ dataDir: options.dataDir, autolock: options.autolock, maxValueBytes: options.maxValueBytes, keepVersions: options.keepVersions });
  const audit = (entry: AuditEntry) => storage.audit.append(entry);
  const announce = options.announce ?? ((text: string) => process.stdout.write(text));
  if (storage.newUnlockKey) {
    announce(
      `This store is autolocked. Its unlock key is shown this once and stored nowhere:\n\n    ${storage.newUnlockKey}\n\n` +
        'Keep it safe (a password manager). After a restart, run `hush unlock` and paste it.\n',
    );
  }
  if (storage.keyring.locked && options.unlockKeyFile) await storage.keyring.unlock(await readFile(options.unlockKeyFile, 'utf8'));

  let cluster: ClusterControl | undefined;
  let certs: AdminCertAuthority | undefined;
  let dispatcher: Dispatcher | undefined;
  let scheduler: RotationScheduler | undefined;
  const metrics = new StoreMetrics();
  metrics.setSources({
    locked: () => storage.keyring.locked,
    secrets: () => storage.secrets.counts(),
    services: async () => (await storage.services.list()).length,
    nodes: async () => dispatcher?.nodeCounts(),
    sessions: () => dispatcher?.openSessions(),
  });
  const app = createAdminApp({
    backend: storage.backend,
    keyring: storage.keyring,
    secrets: storage.secrets,
    services: storage.services,
    nodes: storage.nodes,
    adminCerts: storage.adminCerts,
    stacks: storage.stacks,
    rotateKek: () => storage.rotateKek(),
    cluster: () => cluster,
    certs: () => certs,
    randomBytes: (n) => new Uint8Array(randomBytes(n)),
    metrics,
    audit: storage.audit,
  });
  const unixServer = await listenOnUnixSocket(app, options.socket);
  await updateHomeConfig(options.home, { host: `unix://${options.socket}` });
  log.info({ dataDir: options.dataDir, socket: options.socket, revision: storage.backend.revision(), locked: storage.keyring.locked }, 'store ready');

  let nodeServer: NodeServer | undefined;
  let httpsServer: Server | undefined;
  let homeCredentials: HomeCredentials | undefined;
  const clientConnections = new ClientConnections();
  // Which nodes acknowledged which secret versions, fed by the dispatcher.
  const propagation = new PropagationTracker();
  // A revoked (or superseded) admin certificate loses its open HTTPS connections at once.
  storage.adminCerts.onRevoked((record) => {
    const closed = clientConnections.cut(record.serial);
    log.info({ serial: record.serial, name: record.name, closed }, 'admin certificate revoked');
  });
  const clusterReady = storage.keyring.whenUnlocked().then(async () => {
    const pki = await ClusterPki.open(storage.backend, storage.secrets, { nodeCertSeconds: options.nodeCertSeconds ?? 24 * 3600 });
    const authority = new AdminCertAuthority(pki, storage.adminCerts);
    homeCredentials = new HomeCredentials(options.home, authority, pki.caPem, options.adminCertSeconds ?? DEFAULT_ADMIN_CERT_SECONDS, log);
    await homeCredentials.refresh();
    homeCredentials.start();
    certs = authority;
    const limits = resolveNodeLimits(options.nodeLimits);
    const d = new Dispatcher(storage, log, limits, propagation, metrics, heartbeatPeriodMs);
    dispatcher = d;
    await d.start();
    const membership = new Membership(storage.nodes, pki, (id) => d.status(id).state === 'ready', log, audit);
    // Scheduled rotations: run by whichever store process holds the lease (this one, for the embedded store).
    const s = new RotationScheduler(storage, options.leases ?? new LocalLeases(), (n) => new Uint8Array(randomBytes(n)), audit, log);
    scheduler = s;
    void s.start().catch((err: unknown) => log.error({ err: (err as Error).message }, 'rotation scheduler failed to start'));
    // The node protocol: membership answers who may join and connect, the dispatcher serves the sessions.
    const handler: NodeProtocolHandler = {
      join: (request) => membership.join(request),
      renew: (identity, csrPem) => membership.renew(identity, csrPem),
      authorize: (identity) => membership.authorize(identity),
      openSession: (identity, stream) => d.openSession(identity, stream),
    };
    const listen = options.listen ?? DEFAULT_NODE_LISTEN;
    const admin = options.admin ?? DEFAULT_ADMIN_LISTEN;
    const hosts = [listen, admin].filter(Boolean).map((a) => splitHostPort(a).host).filter((h) => h !== '0.0.0.0' && h !== '::');
    const serverTls = { caPem: pki.caPem, ...pki.serverCredentials(hosts) };
    const node = await startNodeServer(listen, serverTls, handler, limits);
    nodeServer = node;
    const nodeAddress = `${splitHostPort(listen).host}:${node.port}`;
    let adminAddress: string | undefined;
    if (admin) {
      httpsServer = await listenHttps(app, admin, serverTls, clientConnections);
      adminAddress = `${splitHostPort(admin).host}:${(httpsServer.address() as AddressInfo).port}`;
    }
    cluster = {
      joinToken: () => pki.joinToken(),
      rotateJoinToken: () => pki.rotateJoinToken(),
      nodeJoinToken: (name, opts) => pki.nodeJoinToken(name, opts),
      hasNodeJoinToken: (name) => pki.hasNodeJoinToken(name),
      nodeStatus: (id) => d.status(id),
      propagation: (secret, versions) => d.propagation(secret, versions),
    };
    await updateHomeConfig(options.home, { nodeAddress, adminAddress: adminAddress && `https://${adminAddress}` });
    log.info({ nodeAddress, adminAddress, caFingerprint: pki.caFingerprint }, 'cluster listeners ready');
    return { nodeAddress, adminAddress, joinToken: () => pki.joinToken(), nodeJoinToken: (name: string) => pki.nodeJoinToken(name) };
  });
  clusterReady.catch((err: unknown) => log.error({ err: (err as Error).message }, 'cluster side failed to start'));

  return {
    clusterReady,
    retireNode: (idOrName) => storage.nodes.revoke(idOrName),
    async close() {
      // A cluster side still starting (CA key generation is slow) would open its listeners after
      // these closes and keep the process alive: let it finish first. A locked store never starts it.
      if (!storage.keyring.locked) await clusterReady.catch(() => undefined);
      homeCredentials?.stop();
      await scheduler?.stop();
      dispatcher?.stop();
      await nodeServer?.close();
      if (httpsServer) await closeServer(httpsServer);
      await closeServer(unixServer);
      await storage.backend.close();
    },
  };
}
