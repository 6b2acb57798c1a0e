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
}
