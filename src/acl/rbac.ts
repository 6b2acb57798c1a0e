/**
 * Roles of admin clients. An admin client certificate carries one role; the
 * API asks `assertCan(role, action)` before doing anything.
 *
 * There is deliberately no action that reads a secret's value: the admin API
 * never returns one, whatever the role (values leave the store only over mTLS
 * to an entitled node). `secret.read` is names, labels, versions, propagation.
 */
import { HushError } from '../errors/index.js';

export const ACTIONS = [
  'secret.read', // ls, inspect, versions, propagation (never data)
  'secret.write', // create, rotate, Docker label update
  'secret.delete',
  'service.read',
  'service.write', // create, update, rm
  'deploy', // a compose plan: creates and updates secrets and services at once; prune and stack rm remove only what carries the project's label
  'node.read',
  'node.write', // label, rm: labels decide placement, so they decide who gets secrets
  'token.read', // the join token lets a machine join and receive secrets
  'token.rotate',
  'key.rotate',
  'cert.read', // names, roles, serials and expiry of admin client certificates
  'cert.issue', // create and renew admin client certificates: whoever issues them chooses roles
  'cert.revoke',
  'store.unlock',
  'audit.read',
  'metrics.read',
  'unclassified', // a route nobody has classified yet: admin only until someone does
] as const;

export type Action = (typeof ACTIONS)[number];

export const ROLES = ['admin', 'operator', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

const AUDITOR: readonly Action[] = ['secret.read', 'service.read', 'node.read', 'audit.read', 'metrics.read'];

/**
 * Each role includes the one below it (admin ⊇ operator ⊇ auditor), so
 * promoting someone never takes a read away. The operator runs day-to-day
 * changes but cannot change who is in the cluster (nodes, tokens), the keys,
 * or remove secrets.
 */
const GRANTS: Record<Role, ReadonlySet<Action>> = {
  auditor: new Set(AUDITOR),
  operator: new Set<Action>([...AUDITOR, 'secret.write', 'service.write', 'deploy']),
  admin: new Set(ACTIONS),
};

export function isRole(role: unknown): role is Role {
  return typeof role === 'string' && (ROLES as readonly string[]).includes(role);
}

/** Unknown roles (a typo in a cert, a role from a newer version) may do nothing. */
export function can(role: string, action: Action): boolean {
  return isRole(role) && GRANTS[role].has(action);
}

export function assertCan(role: string, action: Action): void {
  if (can(role, action)) return;
  if (!isRole(role)) {
    throw new HushError('forbidden', `unknown role "${role}" may not ${action}; the roles are ${ROLES.join(', ')}; ask an admin for a new certificate`);
  }
  throw new HushError('forbidden', `role "${role}" may not ${action}; ask an admin`);
}

/** The actions a role may take, for `hush` to explain and docs to tabulate. */
export function actionsOf(role: string): Action[] {
  return isRole(role) ? ACTIONS.filter((a) => GRANTS[role].has(a)) : [];
}
