/** A certificate and its private key, both PEM. Keys live only in memory: callers decide where (if anywhere) to write them. */
export interface KeyAndCert {
  certPem: string;
  keyPem: string;
}

/** Roles carried in a client certificate's OU; the ACL layer maps them to permissions. */
export type AdminRole = 'admin' | 'operator' | 'auditor';
export const ADMIN_ROLES: readonly AdminRole[] = ['admin', 'operator', 'auditor'];

/** The OU of a node agent's certificate. */
export type NodeRole = 'node';
export const NODE_ROLE: NodeRole = 'node';

/** The O of every certificate the cluster CA issues. */
export const ORGANIZATION = 'hush';
