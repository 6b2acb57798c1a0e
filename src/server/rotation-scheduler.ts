/**
 * Runs due scheduled rotations (`hush secret rotate NAME --every 24h
 * --generate 32`). The schedules live in the secrets' records (durable);
 * this keeps an index of when each is due, fed by the change feed, and one
 * timer for the earliest. It works only while it holds the
 * "rotation-scheduler" lease, and each rotation commits fenced by that lease
 * and conditioned on the record (SecretStore.runSchedule), so each due time
 * gives one new version, whichever store process runs it. A rotation that
 * fell due while the store was down runs at start.
 */
import type { Logger } from '../log/index.js';
import type { AuditEntry, RandomSource } from '../rotation/index.js';
import type { ChangeBatch, HeldLease, LeaseProvider, OpenedStore } from '../store/index.js';

export const SCHEDULER_LEASE = 'rotation-scheduler';
/** The timer is re-armed at least this often (timers cannot span more than ~24 days, and it costs nothing). */
const MAX_SLEEP_MS = 3600_000;
/** A rotation that failed (store locked meanwhile, a conflict storm) is tried again this much later. */
const RETRY_MS = 5000;

export class RotationScheduler {
  /** Secret name → when its next rotation is due (ms). */
  private readonly due = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private lease: HeldLease | undefined;
  private unsubscribe: (() => void) | undefined;
  private running = false;
  private readonly stopping = new AbortController();

  constructor(
    private readonly store: Pick<OpenedStore, 'secrets' | 'changes'>,
    private readonly leases: LeaseProvider,
    private readonly random: RandomSource,
    private readonly audit: (entry: AuditEntry) => Promise<unknown>,
    private readonly log: Logger,
  ) {}

  /** Takes the lease (waiting while another process holds it), then runs what is due, now and later. */
  async start(): Promise<void> {
    try {
      this.lease = await this.leases.acquire(SCHEDULER_LEASE, this.stopping.signal);
    } catch (err) {
      if (this.stopping.signal.aborted) return;
      throw err;
    }
    // A lost lease means another process runs the schedules now: stop, and wait to take it back.
    this.lease.lost.addEventListener('abort', () => {
      if (this.stopping.signal.aborted) return;
      this.log.warn('lost the rotation-scheduler lease; waiting to take it again');
      this.pause();
      void this.start().catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'rotation scheduler failed to restart'));
    });
    this.unsubscribe = this.store.changes.subscribe((batch) => this.onChange(batch));
    for (const [name, schedule] of await this.store.secrets.schedules()) this.due.set(name, Date.parse(schedule.nextDue));
    this.log.info({ schedules: this.due.size }, 'rotation scheduler running');
    this.arm();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.pause();
    await this.lease?.release();
  }

  /** When each scheduled secret is due next, as this scheduler sees it (for tests). */
  dueTimes(): ReadonlyMap<string, number> {
    return this.due;
  }

  private pause(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.due.clear();
  }

  private onChange(batch: ChangeBatch): void {
    for (const change of batch.changes) {
      if (change.kind !== 'secret') continue;
      if (change.removed) this.due.delete(change.name);
      else void this.refresh(change.name);
    }
  }

  /** Re-reads one secret's schedule (set, changed, removed, or advanced by a run). */
  private async refresh(name: string): Promise<void> {
    try {
      const schedule = await this.store.secrets.scheduleOf(name);
      if (schedule) this.due.set(name, Date.parse(schedule.nextDue));
      else this.due.delete(name);
      this.arm();
    } catch (err) {
      this.log.warn({ secret: name, err: (err as Error).message }, 'could not read a rotation schedule');
    }
  }

  private arm(): void {
    if (!this.lease || this.lease.lost.aborted || this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.due.size === 0) return;
    const next = Math.min(...this.due.values());
    this.timer = setTimeout(() => void this.runDue(), Math.min(Math.max(0, next - Date.now()), MAX_SLEEP_MS));
    this.timer.unref();
  }

  private async runDue(): Promise<void> {
    const lease = this.lease;
    if (!lease || lease.lost.aborted) return;
    this.running = true;
    try {
      const now = new Date();
      for (const [name, due] of [...this.due]) {
        if (due > now.getTime() || lease.lost.aborted) continue;
        try {
          const made = await this.store.secrets.runSchedule(name, now, this.random, lease.fence());
          if (made) {
            this.log.info({ secret: name, version: made.version }, 'scheduled rotation');
            await this.audit({ time: new Date().toISOString(), actor: 'scheduler', action: 'secret.rotate', object: `secret/${name}`, result: 'ok', detail: `version ${made.version} (scheduled)` });
          }
          const schedule = await this.store.secrets.scheduleOf(name);
          if (schedule) this.due.set(name, Date.parse(schedule.nextDue));
          else this.due.delete(name);
        } catch (err) {
          const message = (err as Error).message;
          this.log.error({ secret: name, err: message }, 'scheduled rotation failed; trying again shortly');
          this.due.set(name, Date.now() + RETRY_MS);
          await this.audit({ time: new Date().toISOString(), actor: 'scheduler', action: 'secret.rotate', object: `secret/${name}`, result: 'error', detail: message }).catch(() => undefined);
        }
      }
    } finally {
      this.running = false;
      this.arm();
    }
  }
}
