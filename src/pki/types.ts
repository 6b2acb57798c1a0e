/** A certificate and its private key, both PEM. Keys live only in memory: callers decide where (if anywhere) to write them. */
export interface KeyAndCert {
  certPem: string;
  keyPem: string;
}

/** The OU of a node agent's certificate. */
export type NodeRole = 'node';
export const NODE_ROLE: NodeRole = 'node';

/** The O of every certificate the cluster CA issues. */
export const ORGANIZATION = 'hush';
