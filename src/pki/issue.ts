/**
 * The three kinds of certificates the cluster CA issues:
 * - node: for an agent, from its CSR; short-lived and renewed;
 * - client: for the hush CLI and the docker CLI, carrying an admin role;
 * - server: for the store's TLS listeners.
 * The role sits in the OU; the node id or user name in the CN. That subject
 * is the only identity the API trusts, so it is always set here, never copied
 * from a request.
 */
import forge from 'node-forge';
import { ROLES, type Role } from '../acl/index.js';
import { HushError } from '../errors/index.js';
import { DEFAULT_ADMIN_CERT_SECONDS } from '../rules/index.js';
import { serverAltNames } from './alt-names.js';
import { verifiedCsrPublicKey } from './csr.js';
import { generateKeyPair } from './keys.js';
import { issueLeaf, type LeafSpec } from './leaf.js';
import { subjectAttributes } from './names.js';
import { NODE_ROLE, type KeyAndCert, type NodeRole } from './types.js';
import { checkLifetime, daysToMs } from './validity.js';

/** Admin client certificates: 30 days unless asked otherwise (the store caps requests at 90 days). */
export const DEFAULT_CLIENT_VALIDITY_SECONDS = DEFAULT_ADMIN_CERT_SECONDS;
export const DEFAULT_SERVER_VALIDITY_DAYS = 365;
export const DEFAULT_SERVER_COMMON_NAME = 'hush store';

export interface NodeCertOptions {
  nodeId: string;
  role: NodeRole;
  validitySeconds: number;
}

/** Signs an agent's CSR. Throws HushError('bad_request') if the CSR's signature does not verify. */
export function signNodeCsr(ca: KeyAndCert, csrPem: string, opts: NodeCertOptions): string {
  if (opts.role !== NODE_ROLE) throw new HushError('bad_request', `node certificates carry role "${NODE_ROLE}", not "${String(opts.role)}"`);
  checkLifetime('validitySeconds', opts.validitySeconds);
  const subject = subjectAttributes({ commonName: opts.nodeId, role: opts.role });
  return issueLeaf(ca, {
    publicKey: verifiedCsrPublicKey(csrPem),
    subject,
    lifetimeMs: opts.validitySeconds * 1000,
    usage: 'clientAuth',
  });
}

export interface ClientCertOptions {
  commonName: string;
  /** The admin role the certificate's OU carries (acl's RBAC maps it to permissions). */
  role: Role;
  validitySeconds?: number;
}

export function issueClientCert(ca: KeyAndCert, opts: ClientCertOptions): KeyAndCert {
  if (!ROLES.includes(opts.role)) {
    throw new HushError('bad_request', `unknown role "${String(opts.role)}"; expected one of ${ROLES.join(', ')}`);
  }
  const validitySeconds = opts.validitySeconds ?? DEFAULT_CLIENT_VALIDITY_SECONDS;
  checkLifetime('validitySeconds', validitySeconds);
  const subject = subjectAttributes({ commonName: opts.commonName, role: opts.role });
  return issueWithNewKey(ca, (publicKey) => ({ publicKey, subject, lifetimeMs: validitySeconds * 1000, usage: 'clientAuth' }));
}

export interface ServerCertOptions {
  commonName?: string;
  /** DNS names and IP addresses clients dial; localhost, 127.0.0.1 and ::1 are always added. */
  hosts: string[];
  validityDays?: number;
}

export function issueServerCert(ca: KeyAndCert, opts: ServerCertOptions): KeyAndCert {
  const validityDays = opts.validityDays ?? DEFAULT_SERVER_VALIDITY_DAYS;
  checkLifetime('validityDays', validityDays);
  const subject = subjectAttributes({ commonName: opts.commonName ?? DEFAULT_SERVER_COMMON_NAME });
  const altNames = serverAltNames(opts.hosts);
  return issueWithNewKey(ca, (publicKey) => ({ publicKey, subject, lifetimeMs: daysToMs(validityDays), usage: 'serverAuth', altNames }));
}

/** Validation happens in the callers before this, so a bad option never costs a key generation. */
function issueWithNewKey(ca: KeyAndCert, spec: (publicKey: forge.pki.PublicKey) => LeafSpec): KeyAndCert {
  const { keyPem, publicKeyPem } = generateKeyPair();
  return { certPem: issueLeaf(ca, spec(forge.pki.publicKeyFromPem(publicKeyPem))), keyPem };
}
