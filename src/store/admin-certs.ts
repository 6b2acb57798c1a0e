/**
 * Records of the admin client certificates the store issued: name, role,
 * serial, lifetime, and when (and why) each was revoked. The admin HTTPS
 * listener admits a client certificate only if its serial is on record, not
 * revoked, not expired, and the record's name and role match the
 * certificate's CN and OU; the OU alone proves nothing once a record says
 * otherwise.
 *
 * Keys:
 *   admin-certs/<serial>       the record (never a key: private keys are not kept)
 *   admin-cert-names/<name>    the serial of the name's current certificate
 *
 * The name key makes names unique: creating takes it only if it is absent or
 * points at a certificate that is revoked or expired; renewing moves it from
 * the old serial to the new one in the same commit that revokes the old one.
 *
 * Records are also kept in memory (loaded at open, then updated from the
 * backend's watch), because the check runs on every HTTPS request and must
 * not wait on storage.
 */
import { HushError } from '../errors/index.js';
import type { Role } from '../acl/index.js';
import { ConflictError, type Backend, type KvOp } from './backend.js';
import { ChangeFeed, type ChangeBatch } from './change-feed.js';
import { ADMIN_CERT_PREFIX, adminCertKey, adminCertNameKey } from './keys.js';

export interface AdminCertRecord {
  name: string;
  role: Role;
  /** Lowercase hex, as in the certificate. */
  serial: string;
  issuedAt: string;
  notAfter: string;
  revokedAt?: string;
  /** Set when a renewal replaced this certificate: the serial of its successor. */
  supersededBy?: string;
}

export type AdminCertStatus = 'active' | 'expired' | 'revoked' | 'superseded';

/** What the admin HTTPS listener knows about a peer certificate (TLS has already checked it chains to the CA). */
export interface PeerCertificate {
  serial: string;
  commonName: unknown;
  role: unknown;
}


export function adminCertStatus(record: AdminCertRecord, now = Date.now()): AdminCertStatus {
  if (record.supersededBy) return 'superseded';
  if (record.revokedAt) return 'revoked';
  return Date.parse(record.notAfter) <= now ? 'expired' : 'active';
}

export class AdminCertStore {
  private readonly bySerial = new Map<string, AdminCertRecord>();
  private readonly revokedListeners = new Set<(record: AdminCertRecord) => void>();

  constructor(
    private readonly backend: Backend,
    private readonly changes = new ChangeFeed(backend),
  ) {}

  /** Fills the cache; until then no certificate is on record (an autolocked store loads at unlock). */
  async load(): Promise<void> {
    // Watch first, then load: a commit landing in between is applied twice, which is harmless (same value).
    this.changes.subscribe((batch) => this.apply(batch));
    for (const entry of await this.backend.list(ADMIN_CERT_PREFIX)) this.remember(JSON.parse(entry.value) as AdminCertRecord);
  }

  static async open(backend: Backend): Promise<AdminCertStore> {
    const store = new AdminCertStore(backend);
    await store.load();
    return store;
  }

  /** Called with each record that becomes revoked or superseded, whoever committed it. */
  onRevoked(listener: (record: AdminCertRecord) => void): () => void {
    this.revokedListeners.add(listener);
    return () => this.revokedListeners.delete(listener);
  }

  list(): AdminCertRecord[] {
    return [...this.bySerial.values()].sort((a, b) => (a.issuedAt < b.issuedAt ? -1 : a.issuedAt > b.issuedAt ? 1 : a.name < b.name ? -1 : 1));
  }

  bySerialNumber(serial: string): AdminCertRecord | undefined {
    return this.bySerial.get(serial.toLowerCase());
  }

  /** The name's current certificate, if it has one that is neither revoked nor superseded (it may have expired). */
  async current(name: string): Promise<AdminCertRecord | undefined> {
    const entry = await this.backend.get(adminCertNameKey(name));
    const record = entry && this.bySerial.get(entry.value);
    return record && !record.revokedAt ? record : undefined;
  }

  /**
   * Throws unless `name` is free: never used, or its last certificate is
   * revoked or expired. Cheap, so callers ask before generating a key; add()
   * checks again in its commit.
   */
  async assertNameFree(name: string): Promise<void> {
    const holder = await this.current(name);
    if (holder && adminCertStatus(holder) === 'active') {
      throw new HushError('conflict', `a certificate named "${name}" exists already (serial ${holder.serial}, expires ${holder.notAfter}); renew it with \`hush cert renew ${name}\`, or revoke it first`);
    }
  }

  /** Records a newly issued certificate under a free name. */
  async add(record: AdminCertRecord): Promise<void> {
    const nameKey = adminCertNameKey(record.name);
    const entry = await this.backend.get(nameKey);
    await this.assertNameFree(record.name);
    await this.commitOrConflict(
      [
        { key: nameKey, modRevision: entry?.modRevision ?? 0 },
        { key: adminCertKey(record.serial), modRevision: 0 },
      ],
      [
        { type: 'put', key: adminCertKey(record.serial), value: JSON.stringify(record) },
        { type: 'put', key: nameKey, value: record.serial },
      ],
      `certificate name "${record.name}" was taken by a concurrent request`,
    );
  }

  /** Records `next` as the successor of `previous` (same name): one commit revokes the old serial and moves the name. */
  async replace(previous: AdminCertRecord, next: AdminCertRecord): Promise<void> {
    const nameKey = adminCertNameKey(previous.name);
    const nameEntry = await this.backend.get(nameKey);
    const oldEntry = await this.backend.get(adminCertKey(previous.serial));
    if (!nameEntry || nameEntry.value !== previous.serial || !oldEntry) {
      throw new HushError('conflict', `certificate "${previous.name}" changed while it was being renewed; try again`);
    }
    const superseded: AdminCertRecord = { ...previous, revokedAt: next.issuedAt, supersededBy: next.serial };
    await this.commitOrConflict(
      [
        { key: nameKey, modRevision: nameEntry.modRevision },
        { key: oldEntry.key, modRevision: oldEntry.modRevision },
        { key: adminCertKey(next.serial), modRevision: 0 },
      ],
      [
        { type: 'put', key: oldEntry.key, value: JSON.stringify(superseded) },
        { type: 'put', key: adminCertKey(next.serial), value: JSON.stringify(next) },
        { type: 'put', key: nameKey, value: next.serial },
      ],
      `certificate "${previous.name}" changed while it was being renewed; try again`,
    );
  }

  /**
   * Revokes by serial, or by name (the name's current certificate). Returns
   * the revoked record. The name becomes free for `cert create` again; the
   * record stays, so `hush cert ls` keeps showing it as revoked.
   */
  async revoke(nameOrSerial: string): Promise<AdminCertRecord> {
    const record = this.bySerial.get(nameOrSerial.toLowerCase()) ?? (await this.current(nameOrSerial));
    if (!record) throw new HushError('not_found', `no certificate with the serial or name "${nameOrSerial}"; \`hush cert ls\` lists them`);
    if (record.revokedAt) throw new HushError('conflict', `certificate ${record.serial} ("${record.name}") was revoked already, at ${record.revokedAt}`);
    const recordKey = adminCertKey(record.serial);
    const recordEntry = await this.backend.get(recordKey);
    const nameKey = adminCertNameKey(record.name);
    const nameEntry = await this.backend.get(nameKey);
    const revoked: AdminCertRecord = { ...record, revokedAt: new Date().toISOString() };
    const ops: KvOp[] = [{ type: 'put', key: recordKey, value: JSON.stringify(revoked) }];
    const conditions = [{ key: recordKey, modRevision: recordEntry?.modRevision ?? 0 }];
    if (nameEntry?.value === record.serial) {
      ops.push({ type: 'delete', key: nameKey });
      conditions.push({ key: nameKey, modRevision: nameEntry.modRevision });
    }
    await this.commitOrConflict(conditions, ops, `certificate ${record.serial} changed while it was being revoked; try again`);
    return revoked;
  }

  /**
   * The role a peer certificate may act with, or a HushError('unauthorized')
   * saying why not. Synchronous: it runs on every HTTPS request.
   */
  admit(peer: PeerCertificate, now = Date.now()): Role {
    const record = this.bySerial.get(peer.serial.toLowerCase());
    if (!record) throw new HushError('unauthorized', `client certificate ${peer.serial.toLowerCase()} is not on record (issued before certificates were recorded, or not by this store); ask an admin for a new one with \`hush cert create\``);
    if (record.supersededBy) throw new HushError('unauthorized', `client certificate ${record.serial} ("${record.name}") was replaced by a renewal at ${record.revokedAt}; use the renewed certificate`);
    if (record.revokedAt) throw new HushError('unauthorized', `client certificate ${record.serial} ("${record.name}") was revoked at ${record.revokedAt}`);
    if (Date.parse(record.notAfter) <= now) throw new HushError('unauthorized', `client certificate ${record.serial} ("${record.name}") expired at ${record.notAfter}; renew it with \`hush cert renew ${record.name}\``);
    if (peer.role !== record.role || peer.commonName !== record.name) {
      throw new HushError('unauthorized', `client certificate ${record.serial} does not match its record (name "${record.name}", role ${record.role})`);
    }
    return record.role;
  }

  private async commitOrConflict(conditions: { key: string; modRevision: number }[], ops: KvOp[], conflictMessage: string): Promise<void> {
    try {
      await this.backend.commit({ conditions, ops });
    } catch (err) {
      if (err instanceof ConflictError) throw new HushError('conflict', conflictMessage);
      throw err;
    }
  }

  private apply(batch: ChangeBatch): void {
    for (const change of batch.changes) {
      if (change.kind !== 'admin-cert') continue;
      if (change.record) this.remember(change.record);
      else this.bySerial.delete(change.serial);
    }
  }

  private remember(record: AdminCertRecord): void {
    const before = this.bySerial.get(record.serial);
    this.bySerial.set(record.serial, record);
    if (record.revokedAt && !before?.revokedAt) for (const listener of this.revokedListeners) listener(record);
  }
}
