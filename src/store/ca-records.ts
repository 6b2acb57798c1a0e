/**
 * Where the cluster CA is kept: its certificate in clear (`pki/ca-cert`, it
 * is public) and its key sealed under the KEK like a secret (`sealed/ca-key`),
 * so the key is never on disk in clear. During a CA rotation the previous
 * CA's certificate and the cross certificate sit beside it
 * (`pki/ca-previous`; the previous key is gone: nothing is signed with it
 * after the rotation), and `pki/node-certs/<id>` says which CA issued each
 * node's latest certificate, which is how the rotation knows when every node
 * has moved. The PKI itself lives in src/pki and src/server/cluster-pki.ts;
 * this is only its storage.
 */
import type { Backend } from './backend.js';
import { CA_CERT_KEY, CA_KEY_SEALED_NAME as CA_KEY_NAME, CA_PREVIOUS_KEY, NODE_CERT_PREFIX } from './keys.js';
import type { SecretStore } from './secrets.js';

/** The CA being retired, while a rotation runs. */
export interface PreviousCaRecord {
  certPem: string;
  /** The new CA's key and name signed by the previous CA. */
  crossPem: string;
  startedAt: string;
}

/** Which CA (fingerprint) issued a node's latest certificate. */
export interface NodeCertRecord {
  ca: string;
  issuedAt: string;
}

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

  async loadPrevious(): Promise<PreviousCaRecord | undefined> {
    const entry = await this.backend.get(CA_PREVIOUS_KEY);
    return entry ? (JSON.parse(entry.value) as PreviousCaRecord) : undefined;
  }

  /**
   * The rotation in one commit: the new key replaces the old (sealed), the
   * new certificate the old, and the old certificate with the cross
   * certificate is kept. A crash leaves either the old CA or the new one
   * with its transition, never a key beside a certificate it does not fit.
   */
  async saveRotation(next: { certPem: string; keyPem: string }, previous: PreviousCaRecord): Promise<void> {
    await this.secrets.commitSealed(
      [{ name: CA_KEY_NAME, data: Buffer.from(next.keyPem) }],
      [
        { type: 'put', key: CA_CERT_KEY, value: next.certPem },
        { type: 'put', key: CA_PREVIOUS_KEY, value: JSON.stringify(previous) },
      ],
    );
  }

  /** The previous CA is no longer trusted: its record goes. */
  async retirePrevious(): Promise<void> {
    await this.backend.commit({ ops: [{ type: 'delete', key: CA_PREVIOUS_KEY }] });
  }

  async recordNodeCert(nodeId: string, record: NodeCertRecord): Promise<void> {
    await this.backend.commit({ ops: [{ type: 'put', key: NODE_CERT_PREFIX + nodeId, value: JSON.stringify(record) }] });
  }

  async nodeCerts(): Promise<Map<string, NodeCertRecord>> {
    const entries = await this.backend.list(NODE_CERT_PREFIX);
    return new Map(entries.map((e) => [e.key.slice(NODE_CERT_PREFIX.length), JSON.parse(e.value) as NodeCertRecord]));
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
