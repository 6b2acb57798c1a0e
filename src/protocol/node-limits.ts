/**
 * Limits on what the node port accepts before and after a peer proves who it
 * is. Anyone who can reach the port can open connections and send Join, so
 * everything an untrusted peer can make the store hold (sockets, buffered
 * bytes, in-flight calls) has a ceiling here. Defaults let 10,000 nodes stay
 * connected (one connection each) with room for joins and reconnect storms.
 */
import { readFileSync } from 'node:fs';
import { log } from '../log/index.js';

export interface NodeLimits {
  /**
   * Largest message the store accepts from a peer. grpc-js refuses a larger
   * one from its 5-byte length prefix (RESOURCE_EXHAUSTED) before buffering
   * or decoding it. The largest legitimate messages are a Join with 64 labels
   * of 4 KiB (~260 KiB) and a Hello listing maxContainersPerNode containers
   * (~200 bytes each); the store's own sends (snapshots) are not limited by it.
   */
  maxMessageBytes: number;
  /** A connection that has not made its first call this long after it was accepted (TLS handshake included) is closed. */
  handshakeTimeoutMs: number;
  /** A connection with no call open this long is closed (an agent's session keeps its own connection busy). */
  idleTimeoutMs: number;
  /** Open node-port connections in all; clamped to the process's file-descriptor budget. */
  maxConnections: number;
  /** Open connections from one IP address. Nodes behind one NAT address share it. */
  maxConnectionsPerAddress: number;
  /** Join calls being served at once (the only call without a certificate). */
  maxConcurrentJoins: number;
  /** Join calls waiting for a slot (their bytes unread); beyond this a Join is refused with RESOURCE_EXHAUSTED. */
  maxQueuedJoins: number;
  /** Calls one node (by certificate) may have open at once: its session, a renewal, a session being replaced. */
  maxCallsPerNode: number;
  /** Concurrent HTTP/2 streams on one connection (an agent uses two at most). */
  maxStreamsPerConnection: number;
  /** Containers one node may report (Hello) or register (container start). */
  maxContainersPerNode: number;
  /** Joins with a refused token from one address within a minute that lock it out (src/http/address-lockout.ts). */
  maxJoinFailuresPerAddress: number;
  /** How long a locked-out address's Joins are refused unread. */
  joinLockoutMs: number;
}

export const DEFAULT_NODE_LIMITS: Readonly<NodeLimits> = {
  maxMessageBytes: 1024 * 1024,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  maxConnections: 12_000,
  maxConnectionsPerAddress: 64,
  maxConcurrentJoins: 32,
  maxQueuedJoins: 1_024,
  maxCallsPerNode: 4,
  maxStreamsPerConnection: 8,
  maxContainersPerNode: 1_000,
  // An agent with a wrong token retries with backoff (a few attempts a minute); a guesser makes thousands.
  maxJoinFailuresPerAddress: 10,
  joinLockoutMs: 60_000,
};

/** The window in which refused Joins from one address are counted. */
export const JOIN_FAILURE_WINDOW_MS = 60_000;

/**
 * File descriptors kept out of the node port's reach: the data files, the
 * admin socket and HTTPS listener and their clients, DNS, libuv's own. With
 * these left over, a full node port never takes the admin socket down.
 */
export const RESERVED_FDS = 1_024;

/** The soft RLIMIT_NOFILE of this process (Node raises it to the hard limit at start). */
export function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/** The defaults overridden by `given`, with maxConnections kept inside the fd budget. */
export function resolveNodeLimits(given: Partial<NodeLimits> = {}, fdLimit = openFileLimit()): NodeLimits {
  const limits: NodeLimits = { ...DEFAULT_NODE_LIMITS };
  for (const [key, value] of Object.entries(given) as [keyof NodeLimits, number | undefined][]) if (value !== undefined) limits[key] = value;
  if (fdLimit !== undefined) {
    const budget = Math.max(1, fdLimit - RESERVED_FDS);
    if (limits.maxConnections > budget) {
      log.warn({ wanted: limits.maxConnections, allowed: budget, openFileLimit: fdLimit }, 'node port connection limit lowered to fit the open-file limit; raise LimitNOFILE (ulimit -n) for more nodes');
      limits.maxConnections = budget;
    }
  }
  return limits;
}
