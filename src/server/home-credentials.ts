/**
 * The admin client credentials the store keeps in its own HUSH_HOME
 * (ca.pem, cert.pem, key.pem, 0600; usable as DOCKER_CERT_PATH), under the
 * certificate name "hush-admin". Admin certificates are short-lived now, so
 * the store renews this one itself: at start, and on a timer while it runs,
 * whenever less than a third of its lifetime is left, or it is missing, not
 * on record, revoked, or from another CA. Renewing supersedes the old serial
 * (admin-certs.ts), so a leaked copy of an older key.pem stops working.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HushError } from '../errors/index.js';
import { writeFileAtomic } from '../files/index.js';
import type { Logger } from '../log/index.js';
import type { AdminCertRecord } from '../store/index.js';
import type { AdminCertAuthority } from './admin-certs.js';

export const HOME_CERT_NAME = 'hush-admin';
/** Renew when less than this share of the lifetime is left: a third leaves two thirds used, and time to retry. */
const RENEW_WHEN_LEFT = 1 / 3;
/** Look often enough to catch the renewal point (a tenth of the lifetime), but at most hourly and at least every second. */
const checkIntervalMs = (ttlSeconds: number) => Math.min(3_600_000, Math.max(1000, (ttlSeconds * 1000) / 10));

export type RefreshOutcome = 'kept' | 'renewed' | 'issued';

export class HomeCredentials {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly home: string,
    private readonly authority: AdminCertAuthority,
    /** The active cluster CA: after a CA rotation the credentials move to the new one. */
    private readonly caPem: () => string,
    private readonly ttlSeconds: number,
    private readonly log: Logger,
  ) {}

  /** Makes HUSH_HOME hold admitted hush-admin credentials with more than a third of their lifetime left. */
  refresh(): Promise<RefreshOutcome> {
    // One refresh at a time: a timer tick must not renew twice over a slow disk.
    const next = this.running.then(() => this.refreshNow());
    this.running = next.catch(() => undefined);
    return next;
  }

  /** Starts the renewal timer (it does not keep the process alive). */
  start(): void {
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.log.error({ err: (err as Error).message, home: this.home }, 'renewing the admin credentials in HUSH_HOME failed; will retry'));
    }, checkIntervalMs(this.ttlSeconds));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async refreshNow(): Promise<RefreshOutcome> {
    await mkdir(this.home, { recursive: true, mode: 0o700 });
    const current = await readFile(join(this.home, 'cert.pem'), 'utf8').catch(() => undefined);
    const record = current === undefined ? undefined : this.authority.admitted(current);
    const caOnDisk = await readFile(join(this.home, 'ca.pem'), 'utf8').catch(() => undefined);
    if (record && record.name === HOME_CERT_NAME && !dueForRenewal(record) && caOnDisk === this.caPem()) return 'kept';

    let outcome: RefreshOutcome = 'renewed';
    const issued = await this.authority.renew(HOME_CERT_NAME, this.ttlSeconds).catch((err: unknown) => {
      if (!(err instanceof HushError && err.code === 'not_found')) throw err;
      outcome = 'issued';
      return this.authority.create(HOME_CERT_NAME, 'admin', this.ttlSeconds);
    });
    // Key first: a client reading between the renames gets a new key with the old certificate, and a clear TLS error, once.
    await writeFileAtomic(join(this.home, 'key.pem'), issued.keyPem, 0o600);
    await writeFileAtomic(join(this.home, 'cert.pem'), issued.certPem, 0o600);
    await writeFileAtomic(join(this.home, 'ca.pem'), issued.caPem, 0o600);
    this.log.info({ home: this.home, serial: issued.serial, notAfter: issued.notAfter, replaced: issued.replaced }, `${outcome} the admin credentials in HUSH_HOME`);
    return outcome;
  }
}

function dueForRenewal(record: AdminCertRecord, now = Date.now()): boolean {
  const issued = Date.parse(record.issuedAt);
  const end = Date.parse(record.notAfter);
  return end - now < (end - issued) * RENEW_WHEN_LEFT;
}
