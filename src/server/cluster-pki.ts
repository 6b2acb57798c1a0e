/**
 * The cluster's PKI state, kept in the store: the root CA (certificate in
 * clear, key sealed under the KEK like a secret, so it is never on disk in
 * clear), the join secrets (the cluster-wide one and one per node name that
 * has its own token; sealed too), and what follows from them: join
 * tokens, node certificates, the store's own TLS certificate (issued in memory
 * at each start) and admin client certificates (recorded and renewed by
 * admin-certs.ts and home-credentials.ts).
 */
import { hostname } from 'node:os';
import { STORE_TLS_NAME } from '../protocol/index.js';
import type { Role } from '../acl/index.js';
import { HushError } from '../errors/index.js';
import * as pki from '../pki/index.js';
import { assertValidName } from '../rules/index.js';
import { CaRecords, keys, type Backend, type PreviousCaRecord, type SecretStore } from '../store/index.js';

const JOIN_SECRET = keys.JOIN_SECRET_SEALED_NAME;
const sealedKeyOf = (name: string) => keys.sealedKey(name);

/** Sealed name of the join secret bound to one node name. */
const nodeJoinSecretName = keys.nodeJoinSecretSealedName;

/** What a join token grants: any fresh name (the cluster-wide token), or one node name. */
type JoinGrant = { kind: 'cluster' } | { kind: 'node'; name: string };

/** The store's TLS material for both listeners: what it presents, and which CAs its clients' certificates may come from. */
export interface ServerTls {
  caPem: string;
  keyPem: string;
  certChainPem: string;
}

export class ClusterPki {
  /** Serializes changes to join secrets, so two first requests for a name's token cannot hand out two different ones. */
  private tokenChanges: Promise<unknown> = Promise.resolve();
  /** Serializes CA rotation and retirement. */
  private caChanges: Promise<unknown> = Promise.resolve();
  private readonly caListeners = new Set<() => void | Promise<void>>();

  private constructor(
    private ca: pki.KeyAndCert,
    /** The CA being retired, while a rotation runs (see ca-rotation.ts in src/pki). */
    private previous: PreviousCaRecord | undefined,
    private joinSecret: string,
    private readonly secrets: SecretStore,
    private readonly backend: Backend,
    private readonly records: CaRecords,
    readonly nodeCertSeconds: number,
  ) {}

  static async open(backend: Backend, secrets: SecretStore, options: { nodeCertSeconds: number }): Promise<ClusterPki> {
    const records = new CaRecords(backend, secrets);
    // Replicas on shared storage may start together: the first CA and join secret recorded win, and every replica uses those.
    const ca = (await records.load()) ?? (await records.saveFirst(pki.createClusterCa()));
    if (!(await secrets.getSealed(JOIN_SECRET))) await secrets.putSealedIfAbsent(JOIN_SECRET, Buffer.from(pki.newJoinSecret()), sealedKeyOf(JOIN_SECRET));
    const joinSecret = Buffer.from((await secrets.getSealed(JOIN_SECRET))!).toString('utf8');
    return new ClusterPki(ca, await records.loadPrevious(), joinSecret, secrets, backend, records, options.nodeCertSeconds);
  }

  /**
   * Re-reads the cluster-wide join secret: another replica may have rotated
   * it (shared storage). Done before each join is checked and each token is
   * handed out, so every replica takes and gives the current token.
   */
  async refreshJoinSecret(): Promise<void> {
    const stored = await this.secrets.getSealed(JOIN_SECRET);
    if (stored) this.joinSecret = Buffer.from(stored).toString('utf8');
  }

  /** The active CA: it signs everything issued from now on, and new join tokens carry its fingerprint. */
  get caPem(): string {
    return this.ca.certPem;
  }

  /**
   * Asked twice per join (the token check, the certificate record): parsing
   * the CA certificate each time was 7.5 s of the store's CPU over 1,000
   * joins (bench/propagation.ts), so it is kept per CA certificate.
   */
  get caFingerprint(): string {
    if (this.fingerprintOf.pem !== this.ca.certPem) this.fingerprintOf = { pem: this.ca.certPem, fingerprint: pki.certFingerprint(this.ca.certPem) };
    return this.fingerprintOf.fingerprint;
  }

  private fingerprintOf = { pem: '', fingerprint: '' };

  /** The CA being retired, while a rotation runs. */
  get previousCa(): (PreviousCaRecord & { fingerprint: string }) | undefined {
    return this.previous && { ...this.previous, fingerprint: pki.certFingerprint(this.previous.certPem) };
  }

  /** CAs whose certificates the store accepts from clients: the active one, and the previous one until it is retired. */
  get trustedCaPems(): string[] {
    return this.previous ? [this.ca.certPem, this.previous.certPem] : [this.ca.certPem];
  }

  /** Called after the CA changed (rotated or retired): the listeners take new TLS material. */
  onCaChange(listener: () => void | Promise<void>): () => void {
    this.caListeners.add(listener);
    return () => this.caListeners.delete(listener);
  }

  /**
   * Starts a CA rotation: a new CA key, cross-signed by the current one,
   * becomes the active CA at once (one commit). Refused while a rotation
   * runs: a second one would need a chain of cross certificates.
   */
  rotateCa(): Promise<{ previous: PreviousCaRecord; fingerprint: string }> {
    const change = this.caChanges.then(async () => {
      // Another replica may have rotated or retired since this one last heard (its watch is a moment behind): decide on what is on record.
      await this.takeStored();
      if (this.previous) {
        throw new HushError('conflict', `a CA rotation is already running (started ${this.previous.startedAt}); it ends when every node holds a certificate of the new CA (\`hush ca status\`)`);
      }
      const { next, crossPem } = pki.createSuccessorCa(this.ca);
      const previous: PreviousCaRecord = { certPem: this.ca.certPem, crossPem, startedAt: new Date().toISOString() };
      await this.records.saveRotation(next, previous);
      this.ca = next;
      this.previous = previous;
      await this.emitCaChange();
      return { previous, fingerprint: this.caFingerprint };
    });
    this.caChanges = change.catch(() => undefined);
    return change;
  }

  /** Ends a rotation: the previous CA is no longer trusted, for TLS, admin certificates or join tokens. */
  retirePreviousCa(): Promise<boolean> {
    const change = this.caChanges.then(async () => {
      await this.takeStored();
      if (!this.previous) return false;
      await this.records.retirePrevious();
      this.previous = undefined;
      await this.emitCaChange();
      return true;
    });
    this.caChanges = change.catch(() => undefined);
    return change;
  }

  /**
   * Takes the CA the store holds now, if it is not the one in use: another
   * replica on shared storage rotated it, or retired the previous one (the
   * watch tells each replica). What follows is as for a change made here:
   * the listeners present the new chain and trust, and HUSH_HOME moves.
   * Says whether anything changed.
   */
  reload(): Promise<boolean> {
    const change = this.caChanges.then(() => this.takeStored());
    this.caChanges = change.catch(() => undefined);
    return change;
  }

  /** Within a CA change: adopts the CA on record if it is not the one in use (see reload). */
  private async takeStored(): Promise<boolean> {
    const stored = await this.records.load();
    const previous = await this.records.loadPrevious();
    if (!stored) return false;
    const same = stored.certPem === this.ca.certPem && JSON.stringify(previous ?? null) === JSON.stringify(this.previous ?? null);
    if (same) return false;
    this.ca = stored;
    this.previous = previous;
    await this.emitCaChange();
    return true;
  }

  /** Awaited: what follows from the change (TLS of the listeners, HUSH_HOME's credentials) is done when the rotation or retirement returns. */
  private async emitCaChange(): Promise<void> {
    for (const listener of this.caListeners) await listener();
  }

  /** Records which CA issued a node's certificate (what the rotation's progress counts). */
  recordNodeCert(nodeId: string): Promise<void> {
    return this.records.recordNodeCert(nodeId, { ca: this.caFingerprint, issuedAt: new Date().toISOString() });
  }

  nodeCertIssuers(): ReturnType<CaRecords['nodeCerts']> {
    return this.records.nodeCerts();
  }

  /** Names that have a join token of their own (`hush join-token --node NAME`). */
  async namesWithJoinTokens(): Promise<string[]> {
    const prefix = keys.sealedKey(nodeJoinSecretName(''));
    return (await this.backend.list(prefix)).map((e) => e.key.slice(prefix.length)).sort();
  }

  joinToken(): string {
    return pki.formatJoinToken(this.caFingerprint, this.joinSecret);
  }

  /** A new join secret: old tokens stop working for new joins; joined nodes are unaffected. */
  async rotateJoinToken(): Promise<string> {
    const secret = pki.newJoinSecret();
    await this.secrets.putSealed(JOIN_SECRET, Buffer.from(secret));
    this.joinSecret = secret;
    return this.joinToken();
  }

  /**
   * The token bound to one node name (`hush join-token --node NAME`): the
   * only token that may join a node under a name that has admin labels, its
   * own token, or a connected holder. Made on first request; `rotate`
   * replaces it (the old one stops working for new joins).
   */
  async nodeJoinToken(name: string, options: { rotate?: boolean } = {}): Promise<string> {
    assertValidName(name, 'node');
    const change = this.tokenChanges.then(async () => {
      let secret = options.rotate ? undefined : await this.nodeJoinSecret(name);
      if (secret === undefined) {
        secret = pki.newJoinSecret();
        await this.secrets.putSealed(nodeJoinSecretName(name), Buffer.from(secret));
      }
      return pki.formatJoinToken(this.caFingerprint, secret);
    });
    this.tokenChanges = change.catch(() => undefined);
    return change;
  }

  /** Whether the node name has a token of its own (then the cluster-wide token may not take it). */
  async hasNodeJoinToken(name: string): Promise<boolean> {
    return (await this.nodeJoinSecret(name)) !== undefined;
  }

  /**
   * What the token grants to a node joining under `name` (already checked as
   * a valid node name): the cluster-wide secret, or the secret bound to that
   * very name, both compared in constant time. Throws otherwise.
   */
  async checkJoinToken(token: string, name: string): Promise<JoinGrant> {
    const parsed = pki.parseJoinToken(token);
    await this.refreshJoinSecret();
    // Tokens made before a CA rotation carry the previous CA's fingerprint: good until that CA is retired.
    const previous = this.previousCa?.fingerprint;
    const knownCa = pki.secretsEqual(parsed.caFingerprint, this.caFingerprint) || (previous !== undefined && pki.secretsEqual(parsed.caFingerprint, previous));
    if (!knownCa) throw new HushError('forbidden', 'join token is for another cluster (its CA fingerprint does not match)');
    if (pki.secretsEqual(parsed.secret, this.joinSecret)) return { kind: 'cluster' };
    const bound = await this.nodeJoinSecret(name);
    if (bound !== undefined && pki.secretsEqual(parsed.secret, bound)) return { kind: 'node', name };
    throw new HushError(
      'forbidden',
      `join token is not valid for node name "${name}" (wrong, rotated away, or bound to another name): ` +
        'get the cluster-wide token with `hush join-token`, or the one bound to a name with `hush join-token --node NAME` and join with `--name NAME`',
    );
  }

  private async nodeJoinSecret(name: string): Promise<string | undefined> {
    const sealed = await this.secrets.getSealed(nodeJoinSecretName(name));
    return sealed && Buffer.from(sealed).toString('utf8');
  }

  signNode(csrPem: string, nodeId: string): string {
    return pki.signNodeCsr(this.ca, csrPem, { nodeId, role: pki.NODE_ROLE, validitySeconds: this.nodeCertSeconds });
  }

  /**
   * The store's TLS material: a server certificate made in memory (at each
   * start and each CA change), chained to the CA so agents can check the CA
   * fingerprint. During a rotation the chain is new leaf, cross certificate,
   * previous CA, new CA: a peer trusting either CA verifies it, and a joining
   * agent finds the root its token names (agent/store-ca.ts).
   */
  serverTls(extraHosts: string[]): ServerTls {
    const server = pki.issueServerCert(this.ca, { hosts: [STORE_TLS_NAME, hostname(), ...extraHosts] });
    const chain = this.previous ? [server.certPem, this.previous.crossPem, this.previous.certPem, this.ca.certPem] : [server.certPem, this.ca.certPem];
    return { caPem: this.trustedCaPems.join(''), keyPem: server.keyPem, certChainPem: chain.join('') };
  }

  /** An admin client certificate; record it (admin-certs.ts) before handing it out, or it is refused. */
  issueAdminCert(commonName: string, role: Role, validitySeconds: number): pki.KeyAndCert & { caPem: string } {
    return { ...pki.issueClientCert(this.ca, { commonName, role, validitySeconds }), caPem: this.ca.certPem };
  }

  /** Accepts a certificate of the active CA, or of the previous one until it is retired. */
  verifyClient(certPem: string): pki.CertIdentity {
    try {
      pki.verifyIssuedBy(this.ca, certPem);
    } catch (err) {
      if (!this.previous) throw err;
      pki.verifyIssuedBy(this.previous.certPem, certPem);
    }
    return pki.readCertIdentity(certPem);
  }
}
