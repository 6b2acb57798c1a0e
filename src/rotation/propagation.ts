/**
 * Version propagation: which node holds which version of each secret, as the
 * nodes have acknowledged it. The dispatcher sends numbered revisions; an
 * agent acks a revision once it holds everything sent up to it, and the
 * dispatcher reports that ack here with the versions that revision left on
 * the node. Answering "has every entitled node got version N?" is then a
 * lookup, with no message to any node.
 *
 * Only acknowledged state counts: a version sent but not acked is not held.
 * A node whose session ends is forgotten (what it holds is no longer known;
 * it gets a fresh snapshot when it reconnects).
 */

/** Receives acknowledgements from the dispatcher. */
export interface AckReporter {
  /** `nodeId` acknowledged `revision`, which left it holding `held` (secret name → version). */
  acked(nodeId: string, revision: number, held: ReadonlyMap<string, number>, at: Date): void;
  /** The node's session ended: what it holds is unknown from now on. */
  forget(nodeId: string): void;
}

export interface NodeHolding {
  node: string;
  /** The node's name, where the caller knows it. */
  name?: string;
  /** The version the node holds; undefined if it holds none of the secret. */
  version?: number;
  /** When the node first acknowledged holding that version; undefined if it never did. */
  ackedAt?: string;
}

export interface Propagation {
  version: number;
  /** Every entitled node holds `version` or a newer one. */
  complete: boolean;
  nodes: NodeHolding[];
}

/** What one node acknowledged. */
export interface AckedState {
  revision: number;
  /** Secret → the version held and when the node first acked that version (later acks of other changes keep the time). */
  held: ReadonlyMap<string, { version: number; at: Date }>;
}

export class PropagationTracker implements AckReporter {
  private readonly nodes = new Map<string, AckedState>();

  acked(nodeId: string, revision: number, held: ReadonlyMap<string, number>, at: Date): void {
    const known = this.nodes.get(nodeId);
    // Acks of one session arrive in order, but a late duplicate must not roll the node back.
    if (known && known.revision > revision) return;
    const next = new Map<string, { version: number; at: Date }>();
    for (const [secret, version] of held) {
      const before = known?.held.get(secret);
      next.set(secret, before?.version === version ? before : { version, at });
    }
    this.nodes.set(nodeId, { revision, held: next });
  }

  forget(nodeId: string): void {
    this.nodes.delete(nodeId);
  }

  /** What `nodeId` acknowledged, to share with other store replicas; undefined if nothing. */
  state(nodeId: string): AckedState | undefined {
    return this.nodes.get(nodeId);
  }

  /** The last revision the node acknowledged (0 if none). */
  ackedRevision(nodeId: string): number {
    return this.nodes.get(nodeId)?.revision ?? 0;
  }

  /** The version of `secret` that `nodeId` holds, if it acknowledged one. */
  versionOn(nodeId: string, secret: string): number | undefined {
    return this.nodes.get(nodeId)?.held.get(secret)?.version;
  }

  /** Every node known to hold some version of `secret`, sorted by node id. */
  holders(secret: string): NodeHolding[] {
    const out: NodeHolding[] = [];
    for (const [node, acked] of this.nodes) {
      const held = acked.held.get(secret);
      if (held !== undefined) out.push({ node, version: held.version, ackedAt: held.at.toISOString() });
    }
    return out.sort((a, b) => a.node.localeCompare(b.node));
  }

  /**
   * How far `version` of `secret` has reached among `entitled` (the nodes that
   * should hold it, which the dispatcher knows): complete once each of them
   * acknowledged that version or a newer one. A node this tracker has no
   * acks of is looked up `elsewhere` (with store replicas: the acks another
   * replica shared for a node whose session it serves).
   */
  propagation(secret: string, version: number, entitled: Iterable<string>, names?: ReadonlyMap<string, string>, elsewhere?: (nodeId: string) => AckedState | undefined): Propagation {
    const nodes = [...new Set(entitled)].sort().map((node): NodeHolding => {
      const held = (this.nodes.get(node) ?? elsewhere?.(node))?.held.get(secret);
      const holding: NodeHolding = { node, version: held?.version, ackedAt: held?.at.toISOString() };
      if (names) holding.name = names.get(node);
      return holding;
    });
    return { version, complete: nodes.every((n) => n.version !== undefined && n.version >= version), nodes };
  }
}
