/**
 * The store's Prometheus metrics (prom-client), served at GET /metrics.
 *
 * Two kinds: counters and a latency histogram that the server and the admin
 * API increment as things happen, and gauges read from the store when a
 * scrape arrives (so they are exact, and cost nothing between scrapes).
 *
 * Rules: no metric carries a secret value, and every label value comes from
 * a fixed set chosen here or a constant in the route table, never from a
 * request (a path, a name): request input in labels would let any client
 * grow the series without bound, and names would leak into dashboards.
 * There are no per-secret or per-node labels for the same reason.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the gauges read at scrape time. Each source may be absent (the cluster side starts after unlock). */
export interface MetricSources {
  locked: () => boolean;
  secrets: () => Promise<{ secrets: number; versions: number }>;
  services: () => Promise<number>;
  /** Node counts by state (ready, down); undefined until the cluster side is up. */
  nodes: () => Promise<Record<NodeState, number> | undefined>;
  /** Open node sessions (gRPC streams); undefined until the cluster side is up. */
  sessions: () => number | undefined;
}

export const NODE_STATES = ['ready', 'down'] as const;
export type NodeState = (typeof NODE_STATES)[number];

export type PushKind = 'snapshot' | 'delta';

/** HTTP methods as a fixed label set; anything else is "OTHER". */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

export class StoreMetrics {
  readonly registry = new Registry();
  private sources: MetricSources | undefined;

  private readonly pushes = new Counter({
    name: 'hush_node_pushes_total',
    help: 'Messages that carried secrets or grants to nodes, by kind (snapshot, delta).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  private readonly pushedVersions = new Counter({
    name: 'hush_node_pushed_secret_versions_total',
    help: 'Secret versions sent to nodes (one per node that received it).',
    registers: [this.registry],
  });

  private readonly sessionStarts = new Counter({
    name: 'hush_sessions_resumed_total',
    help: 'Node sessions whose agent asked to resume from the revision it holds, by what the store sent first: a delta over what it holds, or a snapshot (it held nothing, or its revision is one this store has not reached).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  private readonly acks = new Counter({
    name: 'hush_node_acks_total',
    help: 'Acks received from nodes (a node confirms it holds a revision).',
    registers: [this.registry],
  });

  private readonly requestSeconds = new Histogram({
    name: 'hush_http_request_duration_seconds',
    help: 'Admin API request latency (unix socket and HTTPS), by method, route pattern and status.',
    labelNames: ['method', 'route', 'status'] as const,
    // From the fast create path (~0.1 ms) to a slow durable commit.
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  constructor() {
    const read = <T>(get: (s: MetricSources) => T): T | undefined => (this.sources ? get(this.sources) : undefined);
    new Gauge({
      name: 'hush_store_locked',
      help: '1 while the store is locked (autolock, waiting for `hush unlock`), else 0.',
      registers: [this.registry],
      collect() {
        const locked = read((s) => s.locked());
        if (locked !== undefined) this.set(locked ? 1 : 0);
      },
    });
    const secretCounts = async () => (this.sources ? this.sources.secrets() : undefined);
    new Gauge({
      name: 'hush_secrets',
      help: 'Secrets in the store.',
      registers: [this.registry],
      async collect() {
        const counts = await secretCounts();
        if (counts) this.set(counts.secrets);
      },
    });
    new Gauge({
      name: 'hush_secret_versions',
      help: 'Secret versions kept in the store, all secrets together.',
      registers: [this.registry],
      async collect() {
        const counts = await secretCounts();
        if (counts) this.set(counts.versions);
      },
    });
    new Gauge({
      name: 'hush_services',
      help: 'Services in the store.',
      registers: [this.registry],
      async collect() {
        const count = await read((s) => s.services());
        if (count !== undefined) this.set(count);
      },
    });
    new Gauge({
      name: 'hush_nodes',
      help: 'Nodes that joined and are not revoked, by state (ready: heartbeating; down).',
      labelNames: ['state'] as const,
      registers: [this.registry],
      async collect() {
        const byState = await read((s) => s.nodes());
        if (byState) for (const state of NODE_STATES) this.set({ state }, byState[state]);
      },
    });
    new Gauge({
      name: 'hush_node_sessions',
      help: 'Open node sessions (one gRPC stream per connected agent).',
      registers: [this.registry],
      collect() {
        const open = read((s) => s.sessions());
        if (open !== undefined) this.set(open);
      },
    });
  }

  setSources(sources: MetricSources): void {
    this.sources = sources;
  }

  countPush(kind: PushKind, secretVersions: number): void {
    this.pushes.inc({ kind });
    if (secretVersions > 0) this.pushedVersions.inc(secretVersions);
  }

  countSessionStart(kind: PushKind): void {
    this.sessionStarts.inc({ kind });
  }

  countAck(): void {
    this.acks.inc();
  }

  /**
   * Records one request. `route` must be a pattern from the route table (or
   * a fixed word like "unmatched"), never the request's path.
   */
  observeRequest(method: string, route: string, status: number, seconds: number): void {
    const verb = method.toUpperCase();
    this.requestSeconds.observe({ method: METHODS.has(verb) ? verb : 'OTHER', route, status: String(status) }, seconds);
  }

  contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
