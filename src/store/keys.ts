/**
 * The storage key layout: every key and prefix the store writes, defined
 * once. Records are JSON unless noted; names never contain "/" (rules'
 * assertValidName), so `prefix + name` never collides across kinds and a
 * prefix list never reaches into another kind's keys.
 *
 *   secrets/<name>                 secret record with every retained version, sealed
 *   secret-ids/<id>                → name (text)
 *   secret-users/<name>/<service>  the service grants the secret (written with the service)
 *   secret-use/<name>              touched by every commit that adds or drops a use of the secret
 *   sealed/<name>                  internal sealed values: ca-key (the CA's key), join-secret (the
 *                                  cluster-wide one), join-secret/node/<node name> (a name's own token)
 *   services/<name>                service record: grants, constraints
 *   nodes/<id>                     node record: name, hostname, engine labels, containers
 *   node-labels/<node name>        admin labels of a node name
 *   revoked/<id>                   a removed node's revocation, kept for good
 *   admin-certs/<serial>           admin client certificate record (never a key)
 *   admin-cert-names/<name>        → serial of the name's current certificate (text)
 *   pki/ca-cert                    the cluster CA certificate (PEM text; its key is sealed/ca-key)
 *   pki/ca-previous                during a CA rotation: the previous CA certificate and the cross certificate (JSON)
 *   pki/node-certs/<id>            which CA issued the node's latest certificate, and when
 *   meta/keyring                   the sealed keyring of KEKs
 *   replicas/<replica id>          a store replica on shared storage (etcd): last seen, node address
 *   node-sessions/<node id>        which replica the node's session is open on (shared storage only)
 *   node-acks/<node id>            what the node acknowledged holding, shared by the replica serving it (shared storage only)
 *   audit/<seq, 20 digits>         one audit record, chained (rotation/audit-chain.ts); never a value
 *   audit-head                     {seq, tag} of the last audit record: appends are conditioned on it
 */

export const SECRET_PREFIX = 'secrets/';
export const SECRET_ID_PREFIX = 'secret-ids/';
export const SECRET_USERS_PREFIX = 'secret-users/';
export const SECRET_USE_PREFIX = 'secret-use/';
export const SEALED_PREFIX = 'sealed/';
export const SERVICE_PREFIX = 'services/';
export const NODE_PREFIX = 'nodes/';
export const NODE_LABELS_PREFIX = 'node-labels/';
export const REVOKED_PREFIX = 'revoked/';
export const ADMIN_CERT_PREFIX = 'admin-certs/';
export const ADMIN_CERT_NAME_PREFIX = 'admin-cert-names/';
export const CA_CERT_KEY = 'pki/ca-cert';
export const CA_PREVIOUS_KEY = 'pki/ca-previous';
export const NODE_CERT_PREFIX = 'pki/node-certs/';
export const KEYRING_KEY = 'meta/keyring';
export const REPLICA_PREFIX = 'replicas/';
export const NODE_SESSION_PREFIX = 'node-sessions/';
export const NODE_ACKS_PREFIX = 'node-acks/';

export const secretKey = (name: string): string => SECRET_PREFIX + name;
export const secretIdKey = (id: string): string => SECRET_ID_PREFIX + id;
/** Where the services using one secret are listed (prefix of their use keys). */
export const secretUsersPrefix = (secret: string): string => `${SECRET_USERS_PREFIX}${secret}/`;
export const secretUserKey = (secret: string, service: string): string => secretUsersPrefix(secret) + service;
export const secretUseKey = (secret: string): string => SECRET_USE_PREFIX + secret;
export const sealedKey = (name: string): string => SEALED_PREFIX + name;
/** The names of the internal sealed values (SecretStore.putSealed/getSealed take the name, sealedKey makes the key). */
export const CA_KEY_SEALED_NAME = 'ca-key';
export const JOIN_SECRET_SEALED_NAME = 'join-secret';
/** The join secret bound to one node name (a name's own token); with '' the prefix of them all. */
export const nodeJoinSecretSealedName = (node: string): string => `join-secret/node/${node}`;
export const serviceKey = (name: string): string => SERVICE_PREFIX + name;
export const nodeKey = (id: string): string => NODE_PREFIX + id;
export const nodeLabelsKey = (name: string): string => NODE_LABELS_PREFIX + name;
export const revokedKey = (id: string): string => REVOKED_PREFIX + id;
export const adminCertKey = (serial: string): string => ADMIN_CERT_PREFIX + serial;
export const adminCertNameKey = (name: string): string => ADMIN_CERT_NAME_PREFIX + name;
export const replicaKey = (id: string): string => REPLICA_PREFIX + id;
export const nodeSessionKey = (nodeId: string): string => NODE_SESSION_PREFIX + nodeId;
export const nodeAcksKey = (nodeId: string): string => NODE_ACKS_PREFIX + nodeId;
export const AUDIT_PREFIX = 'audit/';
export const AUDIT_HEAD_KEY = 'audit-head';
/** Zero-padded, so the keys list in record order. */
export const auditKey = (seq: number): string => AUDIT_PREFIX + String(seq).padStart(20, '0');
