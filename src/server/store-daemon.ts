/**
 * The store process: opens the data directory, serves the admin API on the
 * root-only socket at once, and, once unlocked, brings up the cluster side:
 * PKI, the node protocol listener, the admin HTTPS listener. Wiring only; the
 * parts live in store/, acl/, pki/, api/, protocol/ and http/.
 */
import { X509Certificate, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { ClientConnections, createAdminApp, type ClusterControl } from '../api/index.js';
import { HushError } from '../errors/index.js';
import { updateHomeConfig } from '../home/index.js';
import { closeServer, listenHttps, listenOnUnixSocket, resolveAuthFailureLimits, splitHostPort, updateHttpsTls, type AuthFailureLimits } from '../http/index.js';
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
import { EtcdBackend, etcdLeadership, leadershipLeases, LocalLeases, openStore, soleLeadership, type EtcdOptions, type LeaseProvider, type Leadership, type NodeRecord } from '../store/index.js';
import { DEFAULT_ADMIN_CERT_SECONDS } from '../rules/index.js';
import { AdminCertAuthority } from './admin-certs.js';
import { CaRotation } from './ca-rotation.js';
import { ClusterPki } from './cluster-pki.js';
import { Dispatcher } from './dispatcher.js';
import { HomeCredentials } from './home-credentials.js';
import { Membership } from './membership.js';
import { ReplicaPresence } from './presence.js';
import { replicaIdIn } from './replica-id.js';
import { RotationScheduler } from './rotation-scheduler.js';

export interface StoreDaemonOptions {
  /** The embedded engine's files; with `etcd`, only this replica's own files (key file, replica id). */
  dataDir: string;
  /** Keep the store in etcd, shared by every replica started with the same endpoints and prefix. */
  etcd?: EtcdOptions;
  /** This replica's name among those sharing etcd (default: made once and kept in the data directory). */
  replicaId?: string;
  /** Lease of the singleton-jobs election among replicas, in seconds (default 10): how long a dead leader holds it. */
  leaderLeaseSeconds?: number;
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
  /** Failed client authentications on the admin HTTPS listener that lock an address out, and for how long; unset fields take the defaults (src/http/auth-failures.ts), maxFailures 0 turns it off. */
  adminAuthFailures?: Partial<AuthFailureLimits>;
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
  /** Whether this replica runs the singleton jobs (scheduled work); a lone store always does. */
  leadership: Leadership;
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
  const adminAuthFailures = resolveAuthFailureLimits(options.adminAuthFailures);
  const storage = await openStore({ dataDir: options.dataDir, etcd: options.etcd, autolock: options.autolock, maxValueBytes: options.maxValueBytes, keepVersions: options.keepVersions });
  const audit = (entry: AuditEntry) => storage.audit.append(entry);
  const replicaId = options.etcd ? (options.replicaId ?? (await replicaIdIn(options.dataDir))) : undefined;
  // Replicas elect the one that runs singleton jobs; it campaigns only once unlocked (a locked replica can run nothing).
  const leadership: Leadership = storage.backend instanceof EtcdBackend ? lazyLeadership() : soleLeadership();
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
  log.info(
    { dataDir: options.dataDir, socket: options.socket, revision: storage.backend.revision(), locked: storage.keyring.locked, ...(options.etcd ? { etcd: options.etcd.endpoints, replica: replicaId } : {}) },
    'store ready',
  );

  let nodeServer: NodeServer | undefined;
  let httpsServer: Server | undefined;
  let homeCredentials: HomeCredentials | undefined;
  let caRotation: CaRotation | undefined;
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
    homeCredentials = new HomeCredentials(options.home, authority, () => pki.caPem, options.adminCertSeconds ?? DEFAULT_ADMIN_CERT_SECONDS, log);
    await homeCredentials.refresh();
    homeCredentials.start();
    certs = authority;
    const limits = resolveNodeLimits(options.nodeLimits);
    if (storage.backend instanceof EtcdBackend && replicaId) (leadership as LazyLeadership).start(etcdLeadership(storage.backend, replicaId, options.leaderLeaseSeconds ?? 10, log));
    const presence = replicaId ? new ReplicaPresence(replicaId, storage.backend, heartbeatPeriodMs, log) : undefined;
    const d = new Dispatcher(storage, log, limits, propagation, metrics, heartbeatPeriodMs, presence);
    dispatcher = d;
    await d.start();
    const rotation = new CaRotation(pki, storage.nodes, storage.adminCerts, (id) => d.status(id).state, log);
    caRotation = rotation;
    const membership = new Membership(storage.nodes, pki, (id) => d.status(id).state === 'ready', log, () => rotation.checkSoon(), audit);
    // A removed node no longer holds a CA rotation up.
    storage.changes.subscribe((batch) => {
      if (pki.previousCa && batch.changes.some((c) => c.kind === 'revoked')) rotation.checkSoon();
      // Replicas: a CA rotated or retired through another replica is taken from the watch (a change made here is already in use: nothing to do).
      if (batch.changes.some((c) => c.kind === 'ca')) {
        pki
          .reload()
          .then(async (changed) => {
            if (!changed) return;
            log.info({ fingerprint: pki.caFingerprint, previous: pki.previousCa?.fingerprint }, 'took the cluster CA another replica changed');
            // This replica watches the rotation too, so it ends even if the one that started it is gone.
            if (pki.previousCa) await rotation.start();
          })
          .catch((err: unknown) => log.error({ err: (err as Error).message }, 'could not take the cluster CA another replica changed'));
      }
    });
    // Scheduled rotations: run by the store process that holds the lease (this one for the embedded store; the elected leader among replicas).
    const leases = options.leases ?? (storage.backend instanceof EtcdBackend ? leadershipLeases(leadership) : new LocalLeases());
    const s = new RotationScheduler(storage, leases, (n) => new Uint8Array(randomBytes(n)), audit, log);
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
    const serverTls = pki.serverTls(hosts);
    const node = await startNodeServer(listen, serverTls, handler, limits);
    nodeServer = node;
    // A CA rotation or retirement: both listeners present the new chain and trust from the next connection on
    // (open connections keep theirs), and HUSH_HOME's admin credentials move to the active CA.
    pki.onCaChange(async () => {
      const next = pki.serverTls(hosts);
      node.updateTls(next);
      if (httpsServer) updateHttpsTls(httpsServer, next);
      if (!pki.previousCa) {
        // Retired: connections opened with a certificate of the old CA were checked only when they opened.
        const active = new X509Certificate(pki.caPem);
        const issuedByOld = (cert: X509Certificate) => !(cert.checkIssued(active) && cert.verify(active.publicKey));
        const admins = clientConnections.cutWhere(issuedByOld);
        const nodes = d.disconnectWhere((pem) => issuedByOld(new X509Certificate(pem)), 'the CA that issued this certificate was retired; renew or join again');
        log.info({ admins, nodes }, 'closed connections made with certificates of the retired CA');
      }
      await homeCredentials?.refresh().catch((err: unknown) => log.error({ err: (err as Error).message }, 'moving the admin credentials in HUSH_HOME to the new CA failed; will retry'));
    });
    const nodeAddress = `${splitHostPort(listen).host}:${node.port}`;
    let adminAddress: string | undefined;
    if (admin) {
      httpsServer = await listenHttps(app, admin, serverTls, clientConnections, adminAuthFailures);
      adminAddress = `${splitHostPort(admin).host}:${(httpsServer.address() as AddressInfo).port}`;
    }
    cluster = {
      joinToken: async () => {
        await pki.refreshJoinSecret();
        return pki.joinToken();
      },
      rotateJoinToken: () => pki.rotateJoinToken(),
      nodeJoinToken: (name, opts) => pki.nodeJoinToken(name, opts),
      hasNodeJoinToken: (name) => pki.hasNodeJoinToken(name),
      nodeStatus: (id) => d.status(id),
      caStatus: () => rotation.status(),
      rotateCa: () => rotation.rotate(),
      propagation: (secret, versions) => d.propagation(secret, versions),
      reads: (query) => d.readRecords(query),
    };
    await rotation.start();
    presence?.setNodeAddress(nodeAddress);
    await updateHomeConfig(options.home, { nodeAddress, adminAddress: adminAddress && `https://${adminAddress}` });
    log.info({ nodeAddress, adminAddress, caFingerprint: pki.caFingerprint }, 'cluster listeners ready');
    return { nodeAddress, adminAddress, joinToken: () => pki.joinToken(), nodeJoinToken: (name: string) => pki.nodeJoinToken(name) };
  });
  clusterReady.catch((err: unknown) => log.error({ err: (err as Error).message }, 'cluster side failed to start'));

  return {
    clusterReady,
    retireNode: (idOrName) => storage.nodes.revoke(idOrName),
    leadership,
    async close() {
      // A cluster side still starting (CA key generation is slow) would open its listeners after
      // these closes and keep the process alive: let it finish first. A locked store never starts it.
      if (!storage.keyring.locked) await clusterReady.catch(() => undefined);
      homeCredentials?.stop();
      caRotation?.stop();
      await scheduler?.stop();
      dispatcher?.stop();
      await leadership.close();
      await nodeServer?.close();
      if (httpsServer) await closeServer(httpsServer);
      await closeServer(unixServer);
      await storage.backend.close();
    },
  };
}

interface LazyLeadership extends Leadership {
  start(inner: Leadership): void;
}

/** A leadership that campaigns from `start` on (after unlock), and is not the leader before. */
function lazyLeadership(): LazyLeadership {
  let inner: Leadership | undefined;
  let closed = false;
  const listeners = new Set<(leader: boolean) => void>();
  return {
    get leader() {
      return inner?.leader ?? false;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    start(started) {
      if (closed) return void started.close();
      inner = started;
      started.onChange((leader) => {
        for (const listener of [...listeners]) listener(leader);
      });
    },
    async close() {
      closed = true;
      await inner?.close();
    },
  };
}
