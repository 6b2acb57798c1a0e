/**
 * Where the cluster CA is kept: its certificate in clear (`pki/ca-cert`, it
 * is public) and its key sealed under the KEK like a secret (`sealed/ca-key`),
 * so the key is never on disk in clear. The PKI itself lives in src/pki and
 * src/server/cluster-pki.ts; this is only its storage.
 */
import type { Backend } from './backend.js';
import { CA_CERT_KEY } from './keys.js';
import type { SecretStore } from './secrets.js';

const CA_KEY_NAME = 'ca-key';

export class CaRecords {
  constructor(
    private readonly backend: Backend,
    private readonly secrets: SecretStore,
  ) {}

  /** The stored CA, or undefined before the first start made one. */
  async load(): Promise<{ certPem: string; keyPem: string } | undefined> {
    const cert = await this.backend.get(CA_CERT_KEY);
    const key = await this.secrets.getSealed(CA_KEY_NAME);
    return cert && key ? { certPem: cert.value, keyPem: Buffer.from(key).toString('utf8') } : undefined;
  }

  /** Key first: a certificate on record always has its key beside it. */
  async save(ca: { certPem: string; keyPem: string }): Promise<void> {
    await this.secrets.putSealed(CA_KEY_NAME, Buffer.from(ca.keyPem));
    await this.backend.commit({ ops: [{ type: 'put', key: CA_CERT_KEY, value: ca.certPem }] });
  }

  /**
   * Records a first CA, key and certificate in one commit, unless a
   * certificate is on record already (replicas on shared storage starting
   * together: one CA wins, and the others load it). Resolves with the CA on record.
   */
  async saveFirst(ca: { certPem: string; keyPem: string }): Promise<{ certPem: string; keyPem: string }> {
    await this.secrets.putSealedIfAbsent(CA_KEY_NAME, Buffer.from(ca.keyPem), CA_CERT_KEY, [{ type: 'put', key: CA_CERT_KEY, value: ca.certPem }]);
    const stored = await this.load();
    if (!stored) throw new Error('the cluster CA was saved but cannot be read back');
    return stored;
  }
}
