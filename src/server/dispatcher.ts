/**
 * The dispatcher: keeps every connected node holding exactly the secrets it
 * is entitled to. Each durable change arrives typed from the store's change
 * feed; the assignments index maps it to the nodes it affects, and only
 * those are re-checked and pushed a Delta at once (no batching window:
 * sub-second propagation is the promise). Entitlement itself is acl's pure
 * rule; who may join and connect is membership.ts; this module gathers
 * inputs, sends, and reports the nodes' acks to rotation's propagation
 * tracker and the nodes' read reports to its read ledger.
 */
import * as grpc from '@grpc/grpc-js';
import * as acl from '../acl/index.js';
import type { NodeStatus } from '../api/index.js';
import { HushError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { NodeState, StoreMetrics } from '../metrics/index.js';
import { DEFAULT_HEARTBEAT_PERIOD_MS, MISSED_HEARTBEATS_BEFORE_DOWN, endWithStatus, grpcStatusOf } from '../protocol/index.js';
import type { AgentMessage, NodeIdentity, StoreMessage, WireContainer, WireHello, WireReadEntry, WireSecretVersion } from '../protocol/index.js';
import { ReadLedger, type PropagationTracker, type Propagation, type ReadRecord } from '../rotation/index.js';
import type { ChangeBatch, NodeRecord, OpenedStore } from '../store/index.js';
import { assertValidContainer, assertValidHello, nodeContainer, assertValidReadReport, tooManyContainers } from './agent-input.js';
import { Assignments } from './assignments.js';
import { NodeSession, heldStateOf, type DesiredState } from './node-session.js';
import { RevisionMemo } from './revision-memo.js';
import type { ReplicaPresence } from './presence.js';

/** A failed update of a node is tried again after this long (the storage's own retries have given up by then). */
const SYNC_RETRY_MS = 1000;

export interface DispatcherLimits {
  /** Containers one node may report or register (NodeLimits.maxContainersPerNode). */
  maxContainersPerNode: number;
}

/** Containers a session remembers for read reports, per allowed container: those running plus as many that stopped. */
const REMEMBERED_CONTAINERS_FACTOR = 2;

export class Dispatcher {
  private readonly sessions = new Map<string, NodeSession>();
  /** Who read which version, as the nodes reported it (rotation/reads.ts: in memory, and why). */
  readonly reads = new ReadLedger();
  private readonly assignments = new Assignments();
  private unsubscribe: (() => void) | undefined;
  /** serviceIndex()'s read, secretHead()'s and entitledNodes()'s, each once per store revision. */
  private readonly services = new RevisionMemo<Map<string, acl.ServiceSpec>>();
  private readonly heads = new RevisionMemo<{ version: number; id: string } | undefined>();
  /** Also dropped by every change (see entitledNodes). */
  private readonly entitled = new RevisionMemo<Map<string, string>>();

  constructor(
    private readonly store: OpenedStore,
    private readonly log: Logger,
    private readonly limits: DispatcherLimits,
    /** Told what each node acknowledged holding; asked how far a version has reached. */
    private readonly acks: PropagationTracker,
    private readonly metrics?: StoreMetrics,
    /** Sent to every agent at session start, and what "down" is judged by. */
    private readonly heartbeatPeriodMs: number = DEFAULT_HEARTBEAT_PERIOD_MS,
    /** Replicas on shared storage: where every node's session is (presence.ts); absent for a lone store. */
    private readonly presence?: ReplicaPresence,
  ) {}

  /** Subscribes to the store's changes, then loads the index (changes that arrive meanwhile are newer than the load, and win). */
  async start(): Promise<void> {
    this.unsubscribe = this.store.changes.subscribe((batch) => this.onChange(batch));
    this.assignments.load(await this.store.services.list(), await this.store.nodes.list());
    await this.presence?.start();
  }

  stop(): void {
    this.unsubscribe?.();
    void this.presence?.stop();
    for (const id of [...this.sessions.keys()]) this.disconnect(id, 'store shutting down');
  }

  /** The sessions a change touches: those of the nodes it affects, and no other. */
  private onChange(batch: ChangeBatch): void {
    this.entitled.clear();
    this.presence?.onChange(batch);
    for (const change of batch.changes) {
      if (change.kind !== 'revoked') continue;
      this.disconnect(change.id, 'node revoked');
      // A removed node's reads go with it.
      this.reads.forgetNode(change.id);
    }
    for (const nodeId of this.assignments.apply(batch.changes)) {
      const session = this.sessions.get(nodeId);
      if (session) void this.sync(session);
    }
  }

  status(nodeId: string): NodeStatus {
    const session = this.sessions.get(nodeId);
    if (!session) {
      // Connected to another replica (shared storage), as long as that replica is alive.
      const remote = this.presence?.remote(nodeId);
      return remote && remote.replica !== this.presence?.replicaId ? { state: 'ready', replica: remote.replica } : { state: 'down' };
    }
    // Agents beat at the period this store sent them; missed beats mean a node that is gone even if its connection is not closed yet.
    const state = Date.now() - session.lastHeartbeat.getTime() > MISSED_HEARTBEATS_BEFORE_DOWN * this.heartbeatPeriodMs ? 'down' : 'ready';
    return { state, lastHeartbeat: session.lastHeartbeat.toISOString(), ackedRevision: session.ackedRevision, ...(this.presence ? { replica: this.presence.replicaId } : {}) };
  }

  /**
   * Ends the sessions whose certificate `drop` picks (those of a CA just
   * retired: TLS checked them when they connected, and an open connection is
   * never checked again). The agent reconnects with what it holds now.
   */
  disconnectWhere(drop: (certPem: string) => boolean, reason: string): number {
    const picked = [...this.sessions.values()].filter((s) => drop(s.certPem));
    for (const session of picked) this.closeSession(session, { code: grpc.status.UNAUTHENTICATED, details: reason });
    return picked.length;
  }

  /**
   * How far each of `versions` of `secret` has reached: the nodes entitled to the
   * secret now (a container of a service granted it runs there, and the
   * service's placement matches the node, as acl decides), each with the
   * version it acknowledged holding and when. Complete once every one of them
   * holds `version` or newer; with no entitled node it is complete at once.
   */
  async propagation(secret: string, versions: readonly number[]): Promise<Propagation[]> {
    const nodes = await this.entitledNodes(secret);
    const entitled = [...nodes.keys()];
    const elsewhere = this.presence ? (nodeId: string) => this.presence!.acksElsewhere(nodeId) : undefined;
    return versions.map((version) => this.acks.propagation(secret, version, entitled, nodes, elsewhere));
  }

  /**
   * The nodes entitled to `secret` (id → name), read once per store revision
   * and change: a propagation view is polled while the acks come in (`--wait`;
   * the bench every few ms), and between changes only the acks move. Read per
   * poll, 1,000 entitled nodes cost the store's one thread ~10 ms each time,
   * in the middle of the fan-out whose acks it is waiting for.
   */
  private entitledNodes(secret: string): Promise<Map<string, string>> {
    return this.entitled.get(this.store.watched.backend.revision(), secret, () => this.readEntitledNodes(secret));
  }

  private async readEntitledNodes(secret: string): Promise<Map<string, string>> {
    const services = await this.serviceIndex();
    const entitled = new Map<string, string>();
    for (const nodeId of this.assignments.nodesUsing(secret)) {
      const node = await this.store.watched.nodes.find(nodeId);
      if (node && acl.entitledSecrets(await this.nodeView(node), node.containers, services).has(secret)) entitled.set(nodeId, node.name);
    }
    return entitled;
  }

  /** What the nodes reported reading (of one secret, if given), with each node's name and each container's runtime identity when known. */
  async readRecords(query: { secret?: string } = {}): Promise<ReadRecord[]> {
    const nodes = new Map<string, NodeRecord | undefined>();
    const out: ReadRecord[] = [];
    for (const record of this.reads.list(query)) {
      if (!nodes.has(record.node)) nodes.set(record.node, await this.store.nodes.find(record.node));
      const node = nodes.get(record.node);
      if (!node) {
        out.push(record);
        continue;
      }
      const runtime = node.containers.find((c) => c.id === record.container)?.runtime;
      out.push({ ...record, nodeName: node.name, ...(runtime ? { runtime } : {}) });
    }
    return out;
  }

  /** Open node sessions, for metrics. */
  openSessions(): number {
    return this.sessions.size;
  }

  /** Nodes that are members (not revoked) by state, for metrics. */
  async nodeCounts(): Promise<Record<NodeState, number>> {
    const counts: Record<NodeState, number> = { ready: 0, down: 0 };
    for (const node of await this.store.nodes.list()) {
      if (!(await this.store.nodes.isRevoked(node.id))) counts[this.status(node.id).state]++;
    }
    return counts;
  }

  openSession(identity: NodeIdentity, stream: grpc.ServerDuplexStream<AgentMessage, StoreMessage>): void {
    this.disconnect(identity.nodeId, 'replaced by a new session');
    const session = new NodeSession(identity.nodeId, identity.certPem, stream, this.heartbeatPeriodMs);
    this.sessions.set(identity.nodeId, session);
    this.presence?.opened(identity.nodeId);
    this.log.info({ node: identity.nodeId }, 'node session opened');
    const end = () => {
      session.closed = true;
      if (this.sessions.get(identity.nodeId) === session) this.forget(session);
    };
    stream.on('error', end);
    stream.on('end', () => {
      end();
      stream.end();
    });
    stream.on('cancelled', end);
    stream.on('data', (message: AgentMessage) => {
      void this.handle(session, message).catch((err: unknown) => this.log.warn({ node: session.nodeId, err: (err as Error).message }, 'node message failed'));
    });
  }

  private async handle(session: NodeSession, message: AgentMessage): Promise<void> {
    // Messages already in flight after the session was ended (a bad Hello, a revocation) change nothing.
    if (session.closed) return;
    session.lastHeartbeat = new Date();
    switch (message.body) {
      case 'hello':
        try {
          assertValidHello(message.hello, this.limits.maxContainersPerNode);
        } catch (err) {
          // Nothing of a bad Hello is stored; the agent hears why and the session ends.
          this.log.warn({ node: session.nodeId, err: (err as Error).message }, 'node sent an invalid hello');
          return this.closeSession(session, grpcStatusOf(err));
        }
        for (const c of message.hello.containers) session.rememberContainer(c.id, c.service, this.rememberedContainers());
        await this.reconcileContainers(session.nodeId, message.hello.containers);
        this.maybeResume(session, message.hello);
        await this.sync(session);
        return;
      case 'ack': {
        this.metrics?.countAck();
        // A node cannot acknowledge what it was never sent.
        const revision = Math.min(message.ack.revision, session.revision);
        if (revision <= session.ackedRevision) return;
        session.ackedRevision = revision;
        const held = session.acknowledge(revision);
        if (held) {
          this.acks.acked(session.nodeId, revision, held, new Date());
          const state = this.acks.state(session.nodeId);
          if (state) this.presence?.shareAcks(session.nodeId, state);
        }
        return;
      }
      case 'heartbeat':
        return;
      case 'read_report':
        return this.recordReads(session, message.read_report.entries ?? []);
      case 'container_start':
        return this.startContainer(session, message.container_start.request_id, message.container_start.container);
      case 'container_identified':
        return this.identifyContainer(session, message.container_identified.container);
      case 'container_stop':
        if (!(await this.knowsContainer(session.nodeId, message.container_stop.container_id))) return;
        await this.store.nodes.update(session.nodeId, (node) => ({ ...node, containers: node.containers.filter((c) => c.id !== message.container_stop.container_id) }));
        return;
    }
  }

  /**
   * A node's report of who read what. Synchronous on purpose: it needs only
   * what this session knows (the containers the store allowed here, the
   * secret versions it sent), so a report sent just before a container's
   * stop is judged as the node saw it. A malformed report is dropped whole;
   * an entry about a container or a secret version this session never had is
   * ignored: a node reports only on what it was given. Both are logged (names
   * and versions only; there is no value in a report).
   */
  private recordReads(session: NodeSession, entries: WireReadEntry[]): void {
    try {
      assertValidReadReport(entries);
    } catch (err) {
      this.log.warn({ node: session.nodeId, entries: entries.length, err: (err as Error).message }, 'node sent an invalid read report; ignored');
      return;
    }
    const now = new Date();
    const refused: string[] = [];
    for (const entry of entries) {
      const service = session.containers.get(entry.container_id);
      const delivered = session.delivered.get(entry.secret);
      if (service === undefined || delivered === undefined || entry.version > delivered) {
        refused.push(`${entry.container_id}:${entry.secret}@${entry.version}`);
        continue;
      }
      this.reads.record(
        session.nodeId,
        {
          container: entry.container_id,
          service,
          secret: entry.secret,
          version: entry.version,
          firstReadAt: new Date(entry.first_read_at_ms),
          releasedAt: entry.released_at_ms === 0 ? null : new Date(entry.released_at_ms),
        },
        now,
      );
    }
    if (refused.length > 0) {
      this.log.warn({ node: session.nodeId, ignored: refused.length, first: refused.slice(0, 5) }, 'node reported reads of containers or secret versions it was not given; ignored');
    }
  }

  private rememberedContainers(): number {
    return REMEMBERED_CONTAINERS_FACTOR * this.limits.maxContainersPerNode;
  }

  /**
   * An agent that asks to resume names the revision it last applied and
   * exactly what it holds then; the session's first send is then a Delta
   * over that (only versions it lacks, what it must drop, and its services'
   * grants), not every value again. Correctness does not rest on this
   * store's history: the Delta is computed from the agent's own list against
   * what the node should hold now, so compaction, another replica or a store
   * restart change nothing. A revision this store has not reached means the
   * agent's state comes from another history (a store restored from a
   * backup, another cluster, a replica behind): then a Snapshot, as a fresh
   * agent gets, replaces whatever it holds.
   */
  private maybeResume(session: NodeSession, hello: WireHello): void {
    if (!hello.resume) return;
    const held = heldStateOf(hello);
    const storeRevision = this.store.backend.revision();
    const why = !held
      ? 'the agent holds nothing yet'
      : held.revision > storeRevision
        ? `the agent's revision ${held.revision} is newer than this store's ${storeRevision}`
        : session.revision > 0
          ? 'a change reached the session before its hello'
          : undefined;
    if (held && !why && session.resume(held)) {
      this.metrics?.countSessionStart('delta');
      this.log.info({ node: session.nodeId, fromRevision: held.revision, held: held.versions.size }, 'node session resumed: sending a delta');
    } else {
      this.metrics?.countSessionStart('snapshot');
      this.log.info({ node: session.nodeId, fromRevision: hello.last_revision, reason: why }, 'node asked to resume: sending a snapshot');
    }
  }

  /** After a store or agent restart the agent's list is the truth. */
  private async reconcileContainers(nodeId: string, containers: WireContainer[]): Promise<void> {
    const node = await this.store.nodes.get(nodeId);
    const wanted = containers.map(nodeContainer);
    if (JSON.stringify(node.containers) !== JSON.stringify(wanted)) await this.store.nodes.update(nodeId, (n) => ({ ...n, containers: wanted }));
  }

  /** The node learned who one of its containers is (Docker's id and name): kept on the node record for `node inspect`. */
  private async identifyContainer(session: NodeSession, container: WireContainer | undefined): Promise<void> {
    try {
      assertValidContainer(container);
    } catch (err) {
      this.log.warn({ node: session.nodeId, err: (err as Error).message }, 'node sent an invalid container identity; ignored');
      return;
    }
    if (!(await this.knowsContainer(session.nodeId, container.id))) return;
    const identified = nodeContainer(container);
    await this.store.nodes.update(session.nodeId, (node) => ({ ...node, containers: node.containers.map((c) => (c.id === identified.id && c.service === identified.service ? identified : c)) }));
  }

  private async startContainer(session: NodeSession, requestId: string, container: WireContainer): Promise<void> {
    const decide = (allowed: boolean, reason: string) =>
      session.enqueue(async () => session.write({ body: 'decision', decision: { request_id: requestId, allowed, reason, revision: session.revision } }));
    try {
      assertValidContainer(container);
    } catch (err) {
      return await decide(false, (err as Error).message);
    }
    try {
      const node = await this.store.nodes.get(session.nodeId);
      const services = await this.serviceIndex();
      const decision = acl.decideContainerStart({ service: container.service, node: await this.nodeView(node), services, nodeRevoked: await this.store.nodes.isRevoked(node.id) });
      if (!decision.allowed) return await decide(false, decision.reason);
      // Checked inside the update so two starts racing for the last slot cannot both take it. The error thrown
      // there aborts the commit; it is kept here so the catch below can tell this refusal from a storage failure.
      const overLimit = tooManyContainers(this.limits.maxContainersPerNode);
      try {
        await this.store.nodes.update(node.id, (n) => {
          const others = n.containers.filter((c) => c.id !== container.id);
          if (others.length >= this.limits.maxContainersPerNode) throw overLimit;
          return { ...n, containers: [...others, { id: container.id, service: container.service }] };
        });
      } catch (err) {
        if (err !== overLimit) throw err;
        // A limit the node ran into, not a fault of the store: a plain refusal, as an admission rule's is.
        this.log.warn({ node: session.nodeId, container: container.id, service: container.service, max: this.limits.maxContainersPerNode }, 'container start refused: node at its container limit');
        return await decide(false, overLimit.message);
      }
      session.rememberContainer(container.id, container.service, this.rememberedContainers());
      // Queued ahead of the decision, so the secrets reach the node first. The commit's own watch event may
      // come after the commit resolves (etcd), so this sync does not wait for it; the event's later sync sends nothing new.
      void this.sync(session);
      await decide(true, '');
    } catch (err) {
      // Answer rather than let the agent wait for its timeout.
      this.log.error({ node: session.nodeId, container: container.id, err: (err as Error).message }, 'container start failed');
      await decide(false, `the store could not register the container: ${(err as Error).message}`);
    }
  }

  /**
   * Brings the node up to date. Never rejects: a failure (the storage
   * unavailable, e.g. etcd without a majority) is logged and tried again a
   * second later until it succeeds, since no later change may come to retry it.
   */
  private sync(session: NodeSession): Promise<void> {
    return session
      .enqueue(async () => {
        // Read before the state: the node then holds at least what this revision has (the reads may see later commits too).
        const revision = this.store.watched.backend.revision();
        const desired = await this.desiredState(session.nodeId);
        if (!desired) return;
        const sent = await session.push(desired, revision, (name, version) => this.reveal(name, version));
        if (sent) this.metrics?.countPush(sent.kind, sent.secretVersions);
      })
      .catch((err: unknown) => {
        this.log.error({ node: session.nodeId, err: (err as Error).message }, 'could not update a node; trying again in 1 s');
        session.retryLater(SYNC_RETRY_MS, () => void this.sync(session));
      });
  }

  private async desiredState(nodeId: string): Promise<DesiredState | undefined> {
    const node = await this.store.watched.nodes.find(nodeId);
    if (!node) return undefined;
    const services = await this.serviceIndex();
    const view = await this.nodeView(node);
    const names = acl.entitledSecrets(view, node.containers, services);
    const versions = new Map<string, number>();
    const ids = new Map<string, string>();
    for (const name of names) {
      const head = await this.secretHead(name);
      if (head) {
        versions.set(name, head.version);
        ids.set(name, head.id);
      }
    }
    const running = new Set(node.containers.map((c) => c.service));
    const grants = new Map<string, { service: string; grants: acl.Grant[] }>();
    for (const name of running) {
      const spec = services.get(name);
      if (spec && acl.decideContainerStart({ service: name, node: view, services }).allowed) grants.set(name, { service: name, grants: spec.grants.filter((g) => versions.has(g.source)) });
    }
    return { versions, ids, services: grants };
  }

  private async reveal(name: string, version: number): Promise<WireSecretVersion & { secret_id: string }> {
    const revealed = await this.store.watched.secrets.reveal(name, version);
    return { name, version, data: Buffer.from(revealed.data), created_at_ms: Date.parse(revealed.createdAt), secret_id: revealed.id };
  }

  /**
   * The services, read once per store revision: a change reaches every node
   * it affects, and each node's sync needs the same index. Read per node, a
   * rotation seen by 1,000 nodes listed the services 1,000 times (the embedded
   * engine's list scans every key: ~2 ms each with 10,000 secrets), which held
   * the rotate call's answer ~2 s (bench/propagation.ts).
   */
  private serviceIndex(): Promise<Map<string, acl.ServiceSpec>> {
    return this.services.get(this.store.watched.backend.revision(), '', async () => {
      const list = await this.store.watched.services.list();
      return new Map(list.map((s) => [s.name, { name: s.name, grants: s.grants, constraints: s.constraints }]));
    });
  }

  /**
   * A secret's current version and id (undefined if it does not exist), read
   * once per store revision like the service index: a rotation reaches every
   * node running a service granted the secret, and each node's sync needs the
   * same answer. Read per node, each of 1,000 syncs parsed the secret's whole
   * record (every kept version, sealed).
   */
  private secretHead(name: string): Promise<{ version: number; id: string } | undefined> {
    return this.heads.get(this.store.watched.backend.revision(), name, () =>
      this.store.watched.secrets.inspect(name).then(
        (secret) => ({ version: secret.version, id: secret.id }),
        (err: unknown) => {
          if (err instanceof HushError && err.code === 'not_found') return undefined;
          throw err;
        },
      ),
    );
  }

  /** What placement judges: the admin labels of the node's name, and what the node reported about itself. */
  private async nodeView(node: NodeRecord): Promise<acl.NodeView> {
    return { id: node.id, hostname: node.hostname, labels: await this.store.watched.nodes.adminLabels(node.name), engineLabels: node.engineLabels, role: node.role };
  }

  /** Only a container the store has on record is removed; an unknown or malformed id changes nothing. */
  private async knowsContainer(nodeId: string, containerId: string): Promise<boolean> {
    const node = await this.store.nodes.find(nodeId);
    return node?.containers.some((c) => c.id === containerId) ?? false;
  }

  private disconnect(nodeId: string, reason: string): void {
    const session = this.sessions.get(nodeId);
    if (session) this.closeSession(session, { code: grpc.status.PERMISSION_DENIED, details: reason });
  }

  private closeSession(session: NodeSession, status: Partial<grpc.StatusObject>): void {
    if (this.sessions.get(session.nodeId) === session) this.forget(session);
    session.closed = true;
    this.log.info({ node: session.nodeId, reason: status.details }, 'node session closed');
    endWithStatus(session.stream, status);
  }

  /** The node has no session any more: what it holds is unknown until it reconnects. */
  private forget(session: NodeSession): void {
    this.sessions.delete(session.nodeId);
    this.presence?.closed(session.nodeId);
    this.acks.forget(session.nodeId);
  }
}
