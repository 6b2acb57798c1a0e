/**
 * The timings both ends of the node protocol rely on, defined once.
 *
 * Keepalive (HTTP/2 pings, done by grpc-js on both sides) notices a dead
 * connection (kill -9, a pulled cable) within seconds instead of TCP's
 * minutes. The heartbeat (a message on the session) says more: the agent
 * process is running and its session is served, which a frozen process with
 * an open connection is not. The store chooses the heartbeat period and
 * sends it at the start of every session (Snapshot.heartbeat_period_ms, as
 * swarmkit's dispatcher does), and judges a node "down" from the same value,
 * so the two can never disagree.
 */

export const KEEPALIVE_TIME_MS = 10_000;
export const KEEPALIVE_TIMEOUT_MS = 5_000;

export const DEFAULT_HEARTBEAT_PERIOD_MS = 5_000;
/** The periods a store may set: faster floods the store with beats, slower hides a dead node for minutes. */
export const MIN_HEARTBEAT_PERIOD_MS = 100;
export const MAX_HEARTBEAT_PERIOD_MS = 60_000;
/** A node whose last message is older than this many periods is "down", even while its connection is open. */
export const MISSED_HEARTBEATS_BEFORE_DOWN = 3;

/**
 * The period an agent beats at, from what its store sent. 0 is what a store
 * that predates the field sends (proto3's default): the default period, which
 * such a store also assumes. A store keeps its period within the bounds; the
 * agent clamps what it receives to them, so a faulty value can neither make
 * it flood the store nor fall silent.
 */
export function heartbeatPeriodFrom(sentMs: number | undefined): number {
  if (!sentMs || !Number.isFinite(sentMs)) return DEFAULT_HEARTBEAT_PERIOD_MS;
  return Math.min(MAX_HEARTBEAT_PERIOD_MS, Math.max(MIN_HEARTBEAT_PERIOD_MS, Math.trunc(sentMs)));
}
