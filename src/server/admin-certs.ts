/**
 * Issuing admin client certificates: the CA signs (cluster-pki.ts), the
 * record goes into the store (store/admin-certs.ts) before anyone sees the
 * certificate, so no certificate is ever out that its record does not cover.
 *
 * Renewal replaces: the new certificate takes the name and the old serial is
 * superseded (refused from then on) in the same commit. A name thus has one
 * usable certificate at a time, and "renew" never leaves a second valid
 * credential behind for the old holder.
 */
import type { Role } from '../acl/index.js';
import type { AdminCertControl, AdminCertView, IssuedAdminCert } from '../api/index.js';
import { HushError } from '../errors/index.js';
import * as pki from '../pki/index.js';
import { DEFAULT_ADMIN_CERT_SECONDS, assertAdminCertLifetime } from '../rules/index.js';
import { adminCertStatus, type AdminCertRecord, type AdminCertStore } from '../store/index.js';
import type { ClusterPki } from './cluster-pki.js';

export class AdminCertAuthority implements AdminCertControl {
  constructor(
    private readonly pki: ClusterPki,
    private readonly records: AdminCertStore,
  ) {}

  list(): AdminCertView[] {
    const now = Date.now();
    return this.records.list().map((r) => ({ ...r, status: adminCertStatus(r, now) }));
  }

  async create(name: string, role: Role, ttlSeconds = DEFAULT_ADMIN_CERT_SECONDS): Promise<IssuedAdminCert> {
    assertAdminCertLifetime(ttlSeconds);
    // Asked before the key is generated: a taken name costs nothing. add() asks again inside its commit.
    await this.records.assertNameFree(name);
    const { issued, record } = this.issue(name, role, ttlSeconds);
    await this.records.add(record);
    return issued;
  }

  async renew(name: string, ttlSeconds = DEFAULT_ADMIN_CERT_SECONDS): Promise<IssuedAdminCert> {
    assertAdminCertLifetime(ttlSeconds);
    const previous = await this.records.current(name);
    if (!previous) throw new HushError('not_found', `no certificate named "${name}" to renew (never issued, or revoked); issue one with \`hush cert create\``);
    const { issued, record } = this.issue(previous.name, previous.role, ttlSeconds);
    await this.records.replace(previous, record);
    return { ...issued, replaced: previous.serial };
  }

  async revoke(nameOrSerial: string): Promise<AdminCertView> {
    const revoked = await this.records.revoke(nameOrSerial);
    return { ...revoked, status: adminCertStatus(revoked) };
  }

  /** The record of the certificate in `certPem`, if it is ours and admitted now; undefined otherwise. */
  admitted(certPem: string): AdminCertRecord | undefined {
    try {
      const identity = this.pki.verifyClient(certPem);
      this.records.admit({ serial: identity.serial, commonName: identity.commonName, role: identity.role });
      return this.records.bySerialNumber(identity.serial);
    } catch {
      return undefined;
    }
  }

  private issue(name: string, role: Role, ttlSeconds: number): { issued: IssuedAdminCert; record: AdminCertRecord } {
    const cert = this.pki.issueAdminCert(name, role, ttlSeconds);
    const identity = pki.readCertIdentity(cert.certPem);
    const record: AdminCertRecord = { name, role, serial: identity.serial, issuedAt: new Date().toISOString(), notAfter: identity.notAfter.toISOString() };
    return { issued: { name, role, serial: record.serial, notAfter: record.notAfter, ...cert }, record };
  }
}
