/**
 * Which store replica runs the singleton jobs (scheduled rotations, and
 * whatever else must run once for the whole cluster, not once per replica).
 *
 * A lone store (embedded engine) always leads. Replicas sharing etcd hold an
 * election with etcd's lease-based campaign: the leader's key lives only as
 * long as its lease, which the leader keeps alive; a replica that dies (or
 * loses etcd) lets the lease expire after `ttlSeconds`, and the next
 * campaigner is elected. The election keys sit beside the store's prefix
 * (`<prefix without "/">.election/`), outside the authenticated key space:
 * they carry no secret and no policy, only which replica leads (someone with
 * etcd write access could stall the jobs by faking a leader, not forge data).
 *
 * Leadership is a hint, not a lock: between a leader losing etcd and its
 * lease expiring, the old leader may still think it leads while another is
 * elected. A job must therefore make its effect conditional on the state it
 * read (a commit conditioned on the modRevision of what it acts on, e.g. a
 * schedule's "next due" record), so a job run twice commits once.
 */
import type { Logger } from '../log/index.js';
import type { EtcdBackend } from './etcd.js';
import { LocalLeases, type LeaseProvider } from './lease.js';

export interface Leadership {
  /** Whether this replica runs the singleton jobs now. */
  readonly leader: boolean;
  /** Told of every change (true: elected; false: lost it). Returns an unsubscribe function. */
  onChange(listener: (leader: boolean) => void): () => void;
  /** Resigns (a clean stop hands over at once instead of after the lease) and stops campaigning. */
  close(): Promise<void>;
}

/** A lone store: always the leader. */
export function soleLeadership(): Leadership {
  return { leader: true, onChange: () => () => {}, close: async () => {} };
}

export const ELECTION_NAME = 'singleton-jobs';

/** Campaigns in etcd as `replicaId` until closed; re-campaigns after losing its lease. */
export function etcdLeadership(backend: EtcdBackend, replicaId: string, ttlSeconds: number, log: Logger): Leadership {
  const namespace = backend.etcd.namespace(`${backend.prefix.replace(/\/$/, '')}.election/`);
  const election = namespace.election(ELECTION_NAME, ttlSeconds);
  const listeners = new Set<(leader: boolean) => void>();
  let leader = false;
  let closed = false;
  let campaign: ReturnType<typeof election.campaign> | undefined;
  const set = (value: boolean) => {
    if (value === leader) return;
    leader = value;
    log.info({ replica: replicaId, leader }, value ? 'this replica now runs the singleton jobs (elected in etcd)' : 'this replica no longer runs the singleton jobs');
    for (const listener of [...listeners]) listener(value);
  };
  const run = () => {
    if (closed) return;
    const current = election.campaign(replicaId);
    campaign = current;
    current.on('elected', () => {
      if (campaign === current) set(true);
    });
    current.on('error', (err: Error) => {
      // A failing campaign can report several errors; only the first starts the next campaign (else they multiply).
      if (campaign !== current || closed) return;
      campaign = undefined;
      set(false);
      log.warn({ replica: replicaId, err: err.message }, 'lost the singleton-jobs election (etcd lease or connection); campaigning again');
      setTimeout(run, 1000).unref();
    });
  };
  run();
  return {
    get leader() {
      return leader;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      closed = true;
      const current = campaign;
      campaign = undefined;
      set(false);
      await current?.resign().catch(() => undefined);
    },
  };
}

/**
 * Leases held while this replica leads (replicas on etcd): the singleton jobs
 * that take a lease (the rotation scheduler) run on the leader only, and stop
 * when it loses the election. Within the process, LocalLeases keeps one runner
 * per duty. The jobs' commits stay conditioned on the records they read, so a
 * leader that has not yet noticed its loss cannot run a due job twice.
 */
export function leadershipLeases(leadership: Leadership): LeaseProvider {
  const local = new LocalLeases();
  return {
    async acquire(name, signal) {
      while (!leadership.leader) {
        signal?.throwIfAborted();
        await new Promise<void>((resolve) => {
          const done = () => {
            off();
            signal?.removeEventListener('abort', done);
            resolve();
          };
          const off = leadership.onChange((leader) => leader && done());
          signal?.addEventListener('abort', done, { once: true });
        });
      }
      const held = await local.acquire(name, signal);
      const off = leadership.onChange((leader) => {
        if (!leader) void release();
      });
      const release = async () => {
        off();
        await held.release();
      };
      return { name: held.name, lost: held.lost, fence: () => held.fence(), release };
    },
  };
}
