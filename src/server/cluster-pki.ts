/**
 * The cluster's PKI state, kept in the store: the root CA (certificate in
 * clear, key sealed under the KEK like a secret, so it is never on disk in
 * clear), the join secret (sealed too), and what follows from them: join
 * tokens, node certificates, the store's own TLS certificate (issued in memory
 * at each start), and the admin client credentials in HUSH_HOME.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { STORE_TLS_NAME } from '../api/index.js';
import { HushError } from '../errors/index.js';
import * as pki from '../pki/index.js';
import type { Backend, SecretStore } from '../store/index.js';

const CA_CERT_KEY = 'pki/ca-cert';

export class ClusterPki {
  private constructor(
    private readonly ca: pki.KeyAndCert,
    private joinSecret: string,
    private readonly secrets: SecretStore,
    readonly nodeCertSeconds: number,
  ) {}

  static async open(backend: Backend, secrets: SecretStore, options: { nodeCertSeconds: number }): Promise<ClusterPki> {
    const certEntry = await backend.get(CA_CERT_KEY);
    const keyBytes = await secrets.getSealed('ca-key');
    let ca: pki.KeyAndCert;
    if (certEntry && keyBytes) {
      ca = { certPem: certEntry.value, keyPem: Buffer.from(keyBytes).toString('utf8') };
    } else {
      ca = pki.createClusterCa();
      await secrets.putSealed('ca-key', Buffer.from(ca.keyPem));
      await backend.commit({ ops: [{ type: 'put', key: CA_CERT_KEY, value: ca.certPem }] });
    }
    const storedSecret = await secrets.getSealed('join-secret');
    let joinSecret = storedSecret && Buffer.from(storedSecret).toString('utf8');
    if (!joinSecret) {
      joinSecret = pki.newJoinSecret();
      await secrets.putSealed('join-secret', Buffer.from(joinSecret));
    }
    return new ClusterPki(ca, joinSecret, secrets, options.nodeCertSeconds);
  }

  get caPem(): string {
    return this.ca.certPem;
  }

  get caFingerprint(): string {
    return pki.certFingerprint(this.ca.certPem);
  }

  joinToken(): string {
    return pki.formatJoinToken(this.caFingerprint, this.joinSecret);
  }

  /** A new join secret: old tokens stop working for new joins; joined nodes are unaffected. */
  async rotateJoinToken(): Promise<string> {
    const secret = pki.newJoinSecret();
    await this.secrets.putSealed('join-secret', Buffer.from(secret));
    this.joinSecret = secret;
    return this.joinToken();
  }

  /** Throws unless the token names this cluster's CA and carries the current join secret. */
  checkJoinToken(token: string): void {
    const parsed = pki.parseJoinToken(token);
    if (!pki.secretsEqual(parsed.caFingerprint, this.caFingerprint)) throw new HushError('forbidden', 'join token is for another cluster (its CA fingerprint does not match)');
    if (!pki.secretsEqual(parsed.secret, this.joinSecret)) throw new HushError('forbidden', 'join token is not valid (wrong, or rotated away): get the current one with `hush join-token`');
  }

  signNode(csrPem: string, nodeId: string): string {
    return pki.signNodeCsr(this.ca, csrPem, { nodeId, role: pki.NODE_ROLE, validitySeconds: this.nodeCertSeconds });
  }

  /** The store's TLS certificate: made in memory at each start, chained to the CA so agents can check the CA fingerprint. */
  serverCredentials(extraHosts: string[]): { keyPem: string; certChainPem: string } {
    const server = pki.issueServerCert(this.ca, { hosts: [STORE_TLS_NAME, hostname(), ...extraHosts] });
    return { keyPem: server.keyPem, certChainPem: server.certPem + this.ca.certPem };
  }

  issueAdminCert(commonName: string, role: pki.AdminRole): pki.KeyAndCert & { caPem: string } {
    return { ...pki.issueClientCert(this.ca, { commonName, role }), caPem: this.ca.certPem };
  }

  verifyClient(certPem: string): pki.CertIdentity {
    pki.verifyIssuedBy(this.ca, certPem);
    return pki.readCertIdentity(certPem);
  }

  /**
   * Writes ca.pem, cert.pem, key.pem (an admin client certificate) into HUSH_HOME,
   * 0600, unless a valid set for this CA is there already. Usable as DOCKER_CERT_PATH.
   */
  async writeAdminCredentials(home: string): Promise<void> {
    await mkdir(home, { recursive: true, mode: 0o700 });
    const existing = await readFile(join(home, 'cert.pem'), 'utf8').catch(() => undefined);
    if (existing) {
      try {
        pki.verifyIssuedBy(this.ca, existing);
        return;
      } catch {
        // issued by another CA or expired: replace it
      }
    }
    const admin = this.issueAdminCert('hush-admin', 'admin');
    await writeFile(join(home, 'key.pem'), admin.keyPem, { mode: 0o600 });
    await writeFile(join(home, 'cert.pem'), admin.certPem, { mode: 0o600 });
    await writeFile(join(home, 'ca.pem'), this.ca.certPem, { mode: 0o600 });
  }
}
