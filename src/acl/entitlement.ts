/**
 * Entitlement, swarmkit's "only tasks assigned to the node" rule: a node may
 * hold a secret only while a container of a service granted that secret runs
 * on it and the service's constraints match the node. The dispatcher pushes
 * exactly `entitledSecrets` and drops what `diffEntitlement` removes.
 *
 * Everything here fails closed: a revoked node, an unknown service or a
 * constraint that cannot be read gets nothing.
 */
import { explainMismatch, nodeDisplayName, type NodeView } from './constraints.js';
import type { Grant } from './grants.js';
import { lookupService, type ServiceIndex, type ServiceSpec } from './services.js';

export type StartDecision = { allowed: true; grants: Grant[] } | { allowed: false; reason: string };

export interface ContainerStartInput {
  service: string;
  node: NodeView;
  services: ServiceIndex;
  nodeRevoked?: boolean;
}

export interface RunningContainer {
  id: string;
  service: string;
}

/** Whether a container of `service` may start on `node`, and with which grants. */
export function decideContainerStart(input: ContainerStartInput): StartDecision {
  const { node } = input;
  const who = `node "${nodeDisplayName(node)}"`;
  // Checked first: a revoked node learns nothing, not even which services exist.
  if (input.nodeRevoked) {
    return { allowed: false, reason: `${who} has been removed from the cluster (its certificate is revoked); join it again with a new join token` };
  }
  const spec = lookupService(input.services, input.service);
  if (spec === undefined) {
    return {
      allowed: false,
      reason: `unknown service "${input.service}": create it with hush service create or hush deploy; hush service ls lists the services`,
    };
  }
  const mismatch = placementMismatch(spec, node);
  if (mismatch !== undefined) return { allowed: false, reason: `service "${spec.name}" may not run on ${who}: ${mismatch}` };
  // Copies, so a caller mutating the answer cannot change the stored spec.
  return { allowed: true, grants: spec.grants.map((g) => ({ ...g })) };
}

/** The secret names `node` may hold now, given the containers running on it. */
export function entitledSecrets(
  node: NodeView,
  containers: readonly RunningContainer[],
  services: ServiceIndex,
  options: { nodeRevoked?: boolean } = {},
): Set<string> {
  const out = new Set<string>();
  if (options.nodeRevoked) return out;
  // Many containers usually share a service; judge each service once.
  const judged = new Map<string, boolean>();
  for (const c of containers) {
    let ok = judged.get(c.service);
    const spec = lookupService(services, c.service);
    if (ok === undefined) {
      ok = spec !== undefined && placementMismatch(spec, node) === undefined;
      judged.set(c.service, ok);
    }
    if (!ok || spec === undefined) continue;
    for (const g of spec.grants) out.add(g.source);
  }
  return out;
}

/** What to push and what to drop when a node's entitlement changes; sorted for stable deltas and logs. */
export function diffEntitlement(before: ReadonlySet<string>, after: ReadonlySet<string>): { added: string[]; removed: string[] } {
  const added = [...after].filter((s) => !before.has(s)).sort();
  const removed = [...before].filter((s) => !after.has(s)).sort();
  return { added, removed };
}

/**
 * The reason a service may not be placed on the node, or undefined if it may.
 * Stored constraints were validated on write; if one still fails to parse
 * (a hand-edited record, an older version's syntax) the service is refused,
 * never let through.
 */
function placementMismatch(spec: ServiceSpec, node: NodeView): string | undefined {
  try {
    return explainMismatch(spec.constraints, node);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
