/**
 * The agent's one long-lived Session stream with the store.
 *
 * Every (re)connection starts with a Hello naming the containers running
 * here and, once something is held, asking to resume: it names the revision
 * last applied and exactly what is held then (names, ids, versions; never a
 * value). The store answers with a Delta over that (base_revision = that
 * revision), or with a full Snapshot when it cannot (see the dispatcher),
 * so a reconnect needs no memory of what was missed either way. A resumed
 * start that does not fit what was sent is a protocol error: the next Hello
 * then asks for a Snapshot. While the stream is down the cache keeps
 * serving what it holds; reconnects back off exponentially with full jitter.
 * A store that says the node is revoked ends the session for good. With
 * several store replicas, each failure moves the next attempt to the next
 * replica (`onDisconnected`), while the cache keeps serving.
 */
import { randomUUID } from 'node:crypto';
import { HushError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import {
  DEFAULT_HEARTBEAT_PERIOD_MS,
  grpc,
  heartbeatPeriodFrom,
  isServiceError,
  type AgentMessage,
  type NodeClient,
  type StoreMessage,
  type WireContainer,
  type WireDecision,
  type WireReadEntry,
  type WireHello,
} from '../protocol/index.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import type { SecretCache } from './cache.js';
import { DecisionTimeout, type StoreLink } from './store-link.js';

export type SessionState = 'connecting' | 'ready' | 'backoff' | 'revoked' | 'closed';

export interface SessionOptions {
  /** The client for the current node certificate; called at each (re)connect, so a renewed certificate takes effect. */
  client: () => NodeClient;
  cache: SecretCache;
  /** Containers registered here now, for the Hello. */
  containers: () => WireContainer[];
  /** When the node certificate expires, to explain refusals after that. */
  certificateExpiry: () => Date;
  log: Logger;
  /** How long a container start waits for a session that is (re)connecting before answering "store unreachable". */
  connectWaitMs?: number;
  /** A stream that brings no snapshot within this time is abandoned and retried. */
  snapshotTimeoutMs?: number;
  backoff?: BackoffOptions;
  onRevoked?: (reason: string) => void;
  /** The stream failed or ended (not revoked): the agent may point `client` at another store replica before the retry. */
  onDisconnected?: () => void;
  /** A session is established (its snapshot applied): a new store session knows nothing this one was told. */
  onReady?: () => void;
  /**
   * An attempt brought no snapshot in time. The channel under it may sit on a
   * connection whose TLS handshake is never answered (a peer that accepted
   * it and went silent, a middlebox that lost its state): grpc-js bounds
   * neither the handshake nor, before it, keepalive, so retrying on that
   * channel waits on the same dead connection forever. The agent drops the
   * channel, and the retry dials anew.
   */
  onStalled?: () => void;
}

export interface SessionStatus {
  state: SessionState;
  revision: number;
  /** Why the last connection failed or ended; undefined while connected. */
  lastError?: string;
  connectedSince?: string;
}

interface Pending {
  resolve: (decision: WireDecision) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

type Stream = grpc.ClientDuplexStream<AgentMessage, StoreMessage>;

/**
 * A Hello that asks to resume lists what is held, about 100 bytes a secret
 * (name up to 64, id 25, version). The store refuses a message over its
 * limit (1 MiB by default) before reading it, and a Hello may already list
 * 1,000 containers (~200 KiB): past this many secrets the agent asks for a
 * Snapshot instead, so its Hello always fits.
 */
const MAX_RESUME_SECRETS = 4_000;

export class StoreSession implements StoreLink {
  readonly #opts: SessionOptions;
  readonly #log: Logger;
  readonly #backoff: Backoff;
  /** What the store asked for at the start of the last session (the default until one has). */
  #heartbeatMs = DEFAULT_HEARTBEAT_PERIOD_MS;
  readonly #connectWaitMs: number;
  #state: SessionState = 'backoff';
  #stream: Stream | undefined;
  #gotSnapshot = false;
  /** The revision the current session's Hello asked to resume from; undefined when it asked for a Snapshot. */
  #resumeFrom: number | undefined;
  /** A resumed start went wrong: ask for a Snapshot next time, until a session is ready again. */
  #noResume = false;
  #lastError: string | undefined = 'not connected yet';
  #connectedSince: Date | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #snapshotTimer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #pending = new Map<string, Pending>();
  #readyWaiters = new Set<() => void>();
  #restartWhenIdle = false;
  #failuresSinceReady = 0;
  #lastExpiryLog = 0;

  constructor(opts: SessionOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#backoff = new Backoff(opts.backoff);
    this.#connectWaitMs = opts.connectWaitMs ?? 5_000;
  }

  get state(): SessionState {
    return this.#state;
  }

  status(): SessionStatus {
    return {
      state: this.#state,
      revision: this.#opts.cache.revision,
      ...(this.#lastError !== undefined && this.#state !== 'ready' ? { lastError: this.#lastError } : {}),
      ...(this.#connectedSince ? { connectedSince: this.#connectedSince.toISOString() } : {}),
    };
  }

  start(): void {
    if (this.#state === 'closed' || this.#state === 'revoked') return;
    this.#connect();
  }

  /** Resolves once a snapshot has been applied (or rejects when the session is closed or revoked). */
  whenReady(timeoutMs: number): Promise<boolean> {
    if (this.#state === 'ready') return Promise.resolve(true);
    if (this.#state === 'closed' || this.#state === 'revoked') return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#readyWaiters.delete(done);
        resolve(this.#state === 'ready');
      };
      const timer = setTimeout(done, timeoutMs);
      this.#readyWaiters.add(done);
    });
  }

  /**
   * Reconnects with the current credentials (after a renewal) once no
   * container start is waiting for its decision, so no request fails for it.
   */
  restartSoon(reason: string): void {
    if (this.#state === 'closed' || this.#state === 'revoked') return;
    this.#log.info({ reason }, 'reopening the session with the store');
    this.#restartWhenIdle = true;
    this.#maybeRestart();
  }

  async requestStart(container: WireContainer, timeoutMs: number): Promise<WireDecision> {
    const started = Date.now();
    if (this.#state === 'revoked') throw this.#revokedError();
    if (this.#state !== 'ready' && !(await this.whenReady(Math.min(this.#connectWaitMs, timeoutMs)))) {
      // Re-read through the getter: the state may have changed while we waited.
      if (this.state === 'revoked') throw this.#revokedError();
      throw new HushError('unavailable', `store unreachable: ${this.#lastError ?? 'not connected'}`);
    }
    const remaining = Math.max(1, timeoutMs - (Date.now() - started));
    const requestId = randomUUID();
    return new Promise<WireDecision>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        reject(new DecisionTimeout(timeoutMs));
        this.#maybeRestart();
      }, remaining);
      this.#pending.set(requestId, { resolve, reject, timer });
      this.#send({ body: 'container_start', container_start: { request_id: requestId, container } });
    });
  }

  notifyStop(containerId: string): void {
    if (this.#state === 'ready') this.#send({ body: 'container_stop', container_stop: { container_id: containerId } });
  }

  notifyIdentified(container: WireContainer): void {
    if (this.#state === 'ready') this.#send({ body: 'container_identified', container_identified: { container } });
  }

  /** Sends a read report (read-reports.ts) on a ready session; false when there is none (the next session hears everything again). */
  sendReads(entries: WireReadEntry[]): boolean {
    if (this.#state !== 'ready' || !this.#stream?.writable) return false;
    this.#send({ body: 'read_report', read_report: { entries } });
    return true;
  }

  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#teardown(new HushError('unavailable', 'store unreachable: the agent is shutting down'));
  }

  #connect(): void {
    this.#reconnectTimer = undefined;
    this.#state = 'connecting';
    this.#gotSnapshot = false;
    this.#restartWhenIdle = false;
    let stream: Stream;
    try {
      stream = this.#opts.client().Session();
    } catch (err) {
      this.#failed(err);
      return;
    }
    this.#stream = stream;
    stream.on('data', (message: StoreMessage) => {
      if (stream === this.#stream) this.#onMessage(message);
    });
    // Every end of a call, clean or not, arrives as exactly one 'status'; 'error' repeats non-OK ones and must merely be listened to.
    stream.on('error', () => {});
    stream.on('status', (status: grpc.StatusObject) => {
      if (stream === this.#stream) this.#failed(status.code === grpc.status.OK ? new Error('the store closed the session') : status);
    });
    this.#send({ body: 'hello', hello: this.#hello() });
    this.#beatEvery(this.#heartbeatMs);
    // The call can be accepted and then never answered (a store stuck, or one that drops a stream without a status);
    // keepalive only notices dead connections, so bound the wait for the snapshot ourselves.
    const snapshotTimeoutMs = this.#opts.snapshotTimeoutMs ?? 15_000;
    this.#snapshotTimer = setTimeout(() => {
      if (stream !== this.#stream || this.#gotSnapshot) return;
      this.#opts.onStalled?.();
      this.#failed(new Error(`no snapshot from the store within ${snapshotTimeoutMs} ms`));
    }, snapshotTimeoutMs);
  }

  /** The session's first message: the containers here and, when something is held, what to resume from. */
  #hello(): WireHello {
    const containers = this.#opts.containers();
    const held = this.#opts.cache.holdings();
    this.#resumeFrom = !this.#noResume && held.revision > 0 && held.secrets.length <= MAX_RESUME_SECRETS ? held.revision : undefined;
    if (this.#resumeFrom === undefined) return { containers, last_revision: held.revision };
    return { containers, last_revision: held.revision, resume: true, held: held.secrets, held_services: held.services };
  }

  #onMessage(message: StoreMessage): void {
    try {
      switch (message.body) {
        case 'snapshot': {
          const period = heartbeatPeriodFrom(message.snapshot.heartbeat_period_ms);
          if (period !== this.#heartbeatMs) this.#beatEvery(period);
          this.#opts.cache.replace(message.snapshot);
          this.#ack(message.snapshot.revision);
          if (!this.#gotSnapshot) this.#becameReady('snapshot');
          return;
        }
        case 'delta': {
          const base = message.delta.base_revision ?? 0;
          if (!this.#gotSnapshot) {
            // A resumed start: a Delta over exactly what this session's Hello said is held. Anything else means the two sides disagree.
            if (this.#resumeFrom === undefined || base !== this.#resumeFrom || this.#opts.cache.revision !== this.#resumeFrom) {
              this.#noResume = true;
              throw new Error(`protocol error: the store sent a delta over revision ${base} before a snapshot (resuming from ${this.#resumeFrom ?? 'nothing'})`);
            }
            const period = heartbeatPeriodFrom(message.delta.heartbeat_period_ms);
            if (period !== this.#heartbeatMs) this.#beatEvery(period);
            this.#opts.cache.apply(message.delta);
            this.#ack(message.delta.revision);
            this.#becameReady('resumed');
            return;
          }
          // Deltas build on this session's start; a resumed-start delta in the middle means the two sides disagree, so start over.
          if (base !== 0) throw new Error(`protocol error: the store sent a resumed start (over revision ${base}) inside a session`);
          this.#opts.cache.apply(message.delta);
          this.#ack(message.delta.revision);
          return;
        }
        case 'decision': {
          const pending = this.#pending.get(message.decision.request_id);
          if (!pending) return; // timed out already
          this.#pending.delete(message.decision.request_id);
          clearTimeout(pending.timer);
          pending.resolve(message.decision);
          this.#maybeRestart();
          return;
        }
        default:
          this.#log.warn({ body: (message as { body?: unknown }).body }, 'ignoring an unknown message from the store');
      }
    } catch (err) {
      this.#log.error({ err }, 'could not apply a message from the store; reconnecting for a fresh snapshot');
      this.#noResume = true;
      this.#failed(err);
    }
  }

  #becameReady(start: 'snapshot' | 'resumed'): void {
    this.#gotSnapshot = true;
    this.#noResume = false;
    clearTimeout(this.#snapshotTimer);
    this.#state = 'ready';
    this.#connectedSince = new Date();
    this.#lastError = undefined;
    this.#backoff.reset();
    const held = this.#opts.cache.held();
    this.#log.info(
      { revision: held.revision, secrets: held.secrets.length, services: held.services.length, afterFailures: this.#failuresSinceReady, start },
      'session with the store established',
    );
    this.#failuresSinceReady = 0;
    this.#opts.onReady?.();
    for (const waiter of [...this.#readyWaiters]) waiter();
  }

  /** (Re)starts the heartbeat at `periodMs`; the store judges the node down after a few missed beats. */
  #beatEvery(periodMs: number): void {
    clearInterval(this.#heartbeat);
    this.#heartbeatMs = periodMs;
    this.#heartbeat = setInterval(() => this.#send({ body: 'heartbeat', heartbeat: { sent_at_ms: Date.now() } }), periodMs);
  }

  #ack(revision: number): void {
    this.#send({ body: 'ack', ack: { revision } });
  }

  #send(message: AgentMessage): void {
    // A write to a stream that just failed is dropped; the failure handler reconnects and the Hello covers it.
    if (this.#stream && this.#stream.writable) this.#stream.write(message);
  }

  /** The stream failed or ended: hold on to what we have and try again later, unless the node is revoked. */
  #failed(err: unknown): void {
    if (this.#state === 'closed' || this.#state === 'revoked') return;
    const reason = this.#explain(err);
    if (isRevocation(err)) {
      this.#state = 'revoked';
      this.#lastError = reason;
      this.#teardown(this.#revokedError());
      // A revoked node must stop serving what it was given, not just stop asking for more.
      this.#opts.cache.clear();
      this.#log.error({ reason }, 'the store says this node is revoked: dropped every secret held and stopped reconnecting; rejoin with a new token to serve again');
      this.#opts.onRevoked?.(reason);
      for (const waiter of [...this.#readyWaiters]) waiter();
      return;
    }
    const wasReady = this.#state === 'ready';
    this.#lastError = reason;
    this.#teardown(new HushError('unavailable', `store unreachable: ${reason}`));
    this.#state = 'backoff';
    this.#failuresSinceReady++;
    this.#opts.onDisconnected?.();
    const delay = this.#backoff.next();
    const fields = { reason, retryInMs: delay, attempt: this.#backoff.attempts, revision: this.#opts.cache.revision };
    if (this.#certificateExpired()) {
      // Not a blip: nothing will work until the node rejoins, so say so loudly, but once a minute, not per attempt.
      if (Date.now() - this.#lastExpiryLog >= 60_000) {
        this.#lastExpiryLog = Date.now();
        this.#log.error(fields, 'the node certificate has expired and the store refuses the session; still retrying, but renewal failed: restart the agent with a valid join token');
      }
    } else if (wasReady || this.#failuresSinceReady === 1) this.#log.warn(fields, 'session with the store lost; serving held secrets and reconnecting');
    else this.#log.debug(fields, 'reconnect to the store failed');
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  /** Stops the stream and timers and fails every request waiting on this session. */
  #teardown(pendingError: Error): void {
    const stream = this.#stream;
    this.#stream = undefined;
    this.#connectedSince = undefined;
    if (stream) {
      stream.removeAllListeners('data');
      stream.on('error', () => {}); // the cancel below surfaces as a CANCELLED error nobody needs
      stream.cancel();
    }
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    clearTimeout(this.#snapshotTimer);
    this.#snapshotTimer = undefined;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(pendingError);
      this.#pending.delete(id);
    }
    if (this.#state === 'closed') for (const waiter of [...this.#readyWaiters]) waiter();
  }

  #maybeRestart(): void {
    if (!this.#restartWhenIdle || this.#pending.size > 0) return;
    if (this.#state === 'closed' || this.#state === 'revoked') return;
    this.#restartWhenIdle = false;
    this.#teardown(new HushError('unavailable', 'store unreachable: session is being reopened'));
    this.#connect();
  }

  #explain(err: unknown): string {
    let reason = isServiceError(err) ? `${grpc.status[err.code] ?? err.code}: ${err.details}` : err instanceof Error ? err.message : String(err);
    if (this.#certificateExpired()) {
      reason += ` (the node certificate expired at ${this.#opts.certificateExpiry().toISOString()}; the store will refuse it until the agent renews or rejoins)`;
    }
    return reason;
  }

  #certificateExpired(): boolean {
    return this.#opts.certificateExpiry().getTime() <= Date.now();
  }

  #revokedError(): HushError {
    return new HushError('forbidden', `node revoked: ${this.#lastError ?? 'the store revoked this node'}`);
  }
}

function isRevocation(err: unknown): boolean {
  return (
    isServiceError(err) &&
    (err.code === grpc.status.PERMISSION_DENIED || err.code === grpc.status.UNAUTHENTICATED) &&
    /revoked/i.test(err.details)
  );
}
