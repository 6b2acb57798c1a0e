/**
 * Cluster membership: who may join under which name, certificate renewal,
 * and whether a node may open a session. The dispatcher decides what a
 * member holds; this decides who is a member.
 *
 * Name rules: the cluster-wide token joins fresh names only. A name with
 * admin labels or a token of its own belongs to whoever holds that name's
 * token, and a name a connected node holds is taken: otherwise anyone with
 * the cluster-wide token could wear a labelled node's name and receive what
 * its labels place there. A node that joins with a name's own token takes
 * the name, and the nodes that held it before are retired (revoked).
 */
import { hostname as localHostname } from 'node:os';
import type { JoinRequest, JoinResponse, NodeIdentity, RenewResponse } from '../protocol/index.js';
import { HushError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { AuditEntry } from '../rotation/index.js';
import { assertValidName } from '../rules/index.js';
import type { NodeRecord, NodeStore } from '../store/index.js';
import { assertValidJoin } from './agent-input.js';
import type { ClusterPki } from './cluster-pki.js';

export class Membership {
  /** Joins one at a time: whether a name is free and taking it must not interleave with another join. */
  private joins: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly nodes: NodeStore,
    private readonly pki: ClusterPki,
    /** Whether the node has a live session (the dispatcher knows). */
    private readonly isConnected: (nodeId: string) => boolean,
    private readonly log: Logger,
    /** Told after a node got a certificate (a CA rotation counts the nodes that moved). */
    private readonly onCertificate: (nodeId: string) => void = () => {},
    /** Joins (granted or refused) and certificate renewals go to the audit log. */
    private readonly audit: (entry: AuditEntry) => Promise<unknown> = async () => undefined,
  ) {}

  async join(request: JoinRequest): Promise<JoinResponse> {
    const object = `node/${(request.name || request.hostname || '?').slice(0, 200)}`;
    try {
      const joined = await this.joinChecked(request);
      await this.record({ actor: 'join-token holder', action: 'node.join', object, result: 'ok', detail: `node id ${joined.node_id}` });
      return joined;
    } catch (err) {
      await this.record({ actor: 'join-token holder', action: 'node.join', object, result: (err as HushError).code ?? 'error', detail: (err as Error).message.slice(0, 500) });
      throw err;
    }
  }

  private async record(entry: Omit<AuditEntry, 'time'>): Promise<void> {
    await this.audit({ time: new Date().toISOString(), ...entry }).catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'could not append to the audit log'));
  }

  private async joinChecked(request: JoinRequest): Promise<JoinResponse> {
    assertValidJoin(request);
    const host = request.hostname || localHostname();
    const name = request.name || host;
    // Checked before the token, which is looked up by name (the name may come from the hostname).
    assertValidName(name, 'node');
    const grant = await this.pki.checkJoinToken(request.token, name);
    const engineLabels = request.labels ?? {};
    const joined = this.joins.then(async () => {
      if (grant.kind === 'cluster') await this.assertFreshName(name);
      const node = await this.nodes.register({ name, hostname: host, engineLabels });
      const certificate = this.pki.signNode(request.csr_pem, node.id);
      await this.pki.recordNodeCert(node.id);
      if (grant.kind === 'node') await this.retireOtherHolders(node);
      this.log.info({ node: node.id, name: node.name, token: grant.kind }, 'node joined');
      this.onCertificate(node.id);
      return { node_id: node.id, certificate_pem: certificate, ...this.caForAgent() };
    });
    this.joins = joined.catch(() => undefined);
    return joined;
  }

  async renew(identity: NodeIdentity, csrPem: string): Promise<RenewResponse> {
    const node = await this.nodes.find(identity.nodeId);
    const actor = `node:${node?.name ?? identity.nodeId}`;
    try {
      const certificate = this.pki.signNode(csrPem, identity.nodeId);
      await this.pki.recordNodeCert(identity.nodeId);
      this.onCertificate(identity.nodeId);
      await this.record({ actor, action: 'node.cert-renew', object: `node/${identity.nodeId}`, result: 'ok' });
      return { certificate_pem: certificate, ...this.caForAgent() };
    } catch (err) {
      await this.record({ actor, action: 'node.cert-renew', object: `node/${identity.nodeId}`, result: (err as HushError).code ?? 'error', detail: (err as Error).message.slice(0, 500) });
      throw err;
    }
  }

  /** The CA that signed what we hand out, and during a CA rotation the cross certificate by which the agent's trusted CA vouches for it. */
  private caForAgent(): { ca_pem: string; ca_cross_pem: string } {
    return { ca_pem: this.pki.caPem, ca_cross_pem: this.pki.previousCa?.crossPem ?? '' };
  }

  /** Whether the node may open a session: a node certificate, not revoked, still on record. */
  async authorize(identity: NodeIdentity): Promise<void> {
    if (identity.role !== 'node') throw new HushError('forbidden', `a "${identity.role}" certificate cannot open a node session`);
    if (await this.nodes.isRevoked(identity.nodeId)) throw new HushError('forbidden', `node ${identity.nodeId} has been revoked`);
    if (!(await this.nodes.find(identity.nodeId))) throw new HushError('forbidden', `node ${identity.nodeId} is not a member of this cluster`);
  }

  /** The cluster-wide token may take `name` only if it is fresh (see the module comment). */
  private async assertFreshName(name: string): Promise<void> {
    const hint = `join it with its own token (\`hush join-token --node ${name}\` on the store), or under another --name`;
    if (Object.keys(await this.nodes.adminLabels(name)).length > 0) throw new HushError('forbidden', `node name "${name}" has labels set by an admin: ${hint}`);
    if (await this.pki.hasNodeJoinToken(name)) throw new HushError('forbidden', `node name "${name}" has a join token of its own: ${hint}`);
    const holder = (await this.nodes.withName(name)).find((n) => this.isConnected(n.id));
    if (holder) throw new HushError('forbidden', `node name "${name}" is held by connected node ${holder.id}: ${hint}`);
  }

  /** A node that joins with a name's own token takes the name: the nodes that held it before are retired (revoked), their sessions closed. */
  private async retireOtherHolders(node: NodeRecord): Promise<void> {
    for (const other of await this.nodes.withName(node.name)) {
      if (other.id === node.id) continue;
      await this.nodes.revoke(other.id);
      this.log.info({ node: other.id, name: other.name, by: node.id }, 'node retired: its name was joined with the name\'s own token');
    }
  }
}
