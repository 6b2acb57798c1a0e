/**
 * The cluster CA's rotation, from `hush ca rotate` to the old CA's
 * retirement. ClusterPki holds the CA material; this decides when the
 * transition ends and reports its progress.
 *
 * A node has moved when its latest certificate comes from the new CA (agents
 * get one at their next renewal, at half of the certificate's life, or when
 * they join), or when its old certificate has expired (it cannot connect with
 * it; it must join again, with a new token). So a rotation ends by itself at
 * most one node-certificate lifetime after it started. Then the previous CA
 * is retired: the store's TLS chain and trust drop it, old join tokens stop
 * working, certificates it issued (admin bundles not renewed) are refused.
 */
import type { CaRotationReport, CaStatus } from '../api/index.js';
import type { Logger } from '../log/index.js';
import { adminCertStatus, type AdminCertStore, type NodeStore } from '../store/index.js';
import type { ClusterPki } from './cluster-pki.js';
import { HOME_CERT_NAME } from './home-credentials.js';

/** How often a running rotation looks again for nodes whose old certificate has expired meanwhile. */
const MAX_CHECK_INTERVAL_MS = 30_000;

export class CaRotation {
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly pki: ClusterPki,
    private readonly nodes: NodeStore,
    private readonly adminCerts: AdminCertStore,
    /** Whether a node has a live session now (shown in the progress). */
    private readonly nodeState: (nodeId: string) => 'ready' | 'down',
    private readonly log: Logger,
  ) {}

  /** Resumes a rotation that was running when the store stopped. */
  async start(): Promise<void> {
    if (this.pki.previousCa) {
      this.startTimer();
      await this.check();
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  async rotate(): Promise<CaRotationReport> {
    const stillValid = this.adminCerts.list().filter((r) => adminCertStatus(r) === 'active' && r.name !== HOME_CERT_NAME);
    const nodeNamesWithTokens = await this.pki.namesWithJoinTokens();
    const { previous, fingerprint } = await this.pki.rotateCa();
    const previousFingerprint = this.pki.previousCa?.fingerprint ?? '';
    this.log.info({ fingerprint, previous: previousFingerprint }, 'CA rotation started');
    this.startTimer();
    const status = await this.status();
    // With no node to wait for, the rotation is complete at once.
    await this.check();
    return {
      fingerprint,
      previousFingerprint,
      startedAt: previous.startedAt,
      nodeCertSeconds: this.pki.nodeCertSeconds,
      retired: this.pki.previousCa === undefined,
      nodes: { moved: status.rotation?.moved ?? 0, total: status.rotation?.total ?? 0 },
      refresh: {
        adminCerts: stillValid.map(({ name, role, serial, notAfter }) => ({ name, role, serial, notAfter })),
        joinTokens: { clusterWide: true, nodeNames: nodeNamesWithTokens },
      },
    };
  }

  async status(): Promise<CaStatus> {
    const previous = this.pki.previousCa;
    if (!previous) return { fingerprint: this.pki.caFingerprint };
    const now = Date.now();
    const startedAt = Date.parse(previous.startedAt);
    const issuers = await this.pki.nodeCertIssuers();
    const nodes = (await this.nodes.list()).map((node) => {
      const record = issuers.get(node.id);
      const moved = record?.ca === this.pki.caFingerprint;
      // A certificate from before the rotation is valid at most nodeCertSeconds from its issue (at the latest, the start).
      const oldCertEnds = (record ? Date.parse(record.issuedAt) : startedAt) + this.pki.nodeCertSeconds * 1000;
      const expired = !moved && oldCertEnds <= now;
      return {
        node: node.id,
        name: node.name,
        state: this.nodeState(node.id),
        moved,
        ...(record ? { certIssuedAt: record.issuedAt } : {}),
        ...(moved ? {} : { oldCertificateEnds: new Date(oldCertEnds).toISOString() }),
        ...(expired ? { expired } : {}),
      };
    });
    const done = nodes.filter((n) => n.moved || n.expired).length;
    return {
      fingerprint: this.pki.caFingerprint,
      rotation: {
        previousFingerprint: previous.fingerprint,
        startedAt: previous.startedAt,
        moved: done,
        total: nodes.length,
        complete: done === nodes.length,
        nodes,
      },
    };
  }

  /** Retires the previous CA once every node has moved (or its old certificate expired). One check at a time. */
  check(): Promise<boolean> {
    const next = this.checking.then(async () => {
      if (!this.pki.previousCa) return false;
      const status = await this.status();
      if (!status.rotation?.complete) return false;
      const fingerprint = status.rotation.previousFingerprint;
      if (!(await this.pki.retirePreviousCa())) return false;
      this.stop();
      this.log.info({ retired: fingerprint, active: this.pki.caFingerprint, nodes: status.rotation.total }, 'CA rotation complete: the previous CA is retired');
      return true;
    });
    this.checking = next.catch(() => undefined);
    return next;
  }

  /** Never rejects: a failed check is logged and the next event or tick tries again. */
  checkSoon(): void {
    this.check().catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'checking the CA rotation failed'));
  }

  private startTimer(): void {
    if (this.timer) return;
    const interval = Math.max(1000, Math.min(MAX_CHECK_INTERVAL_MS, (this.pki.nodeCertSeconds * 1000) / 4));
    this.timer = setInterval(() => this.checkSoon(), interval);
    this.timer.unref();
  }
}
