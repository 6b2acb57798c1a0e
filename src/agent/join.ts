/**
 * Joining the cluster: check the store's CA against the token, then send the
 * token and a CSR for a key generated here, in memory, and never written.
 */
import { hostname as osHostname } from 'node:os';
import { HushError } from '../errors/index.js';
import { createCsr, fingerprintMatches, generateKeyPairAsync, parseJoinToken } from '../pki/index.js';
import { grpc, isServiceError, joinClient, unary } from '../protocol/index.js';
import type { StoreAddress } from './address.js';
import { acceptCertificate, nextTrustedCa, type NodeIdentity } from './node-identity.js';
import { fetchVerifiedStoreCa } from './store-ca.js';

export interface JoinOptions {
  address: StoreAddress;
  token: string;
  /** Display name; the store defaults it to the hostname. */
  name?: string;
  hostname?: string;
  labels?: Record<string, string>;
  timeoutMs?: number;
}

export async function joinStore(opts: JoinOptions): Promise<NodeIdentity> {
  const token = parseJoinToken(opts.token);
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const caPem = await fetchVerifiedStoreCa(opts.address, token.caFingerprint, timeoutMs);

  const hostname = opts.hostname ?? osHostname();
  const { keyPem } = await generateKeyPairAsync();
  const client = joinClient(opts.address, caPem);
  try {
    const response = await unary(client.Join.bind(client), {
      token: opts.token.trim(),
      csr_pem: createCsr(keyPem, opts.name ?? hostname),
      name: opts.name ?? hostname,
      hostname,
      labels: opts.labels ?? {},
    }, timeoutMs).catch((err: unknown) => {
      throw joinError(opts.address, err);
    });
    // The CA the store names must be the one the token vouches for, or (during a CA rotation, with a token made before
    // it) a successor that CA cross-signed: anything else would let the store swap trust after the check.
    let trusted = caPem;
    if (!fingerprintMatches(token.caFingerprint, response.ca_pem)) {
      try {
        trusted = nextTrustedCa(caPem, response.ca_pem, response.ca_cross_pem);
      } catch (err) {
        throw new HushError('unauthorized', `the store at ${opts.address.display} answered the join with a CA other than the one in the join token (${(err as Error).message})`);
      }
    }
    return acceptCertificate(response.node_id, trusted, keyPem, response.certificate_pem);
  } finally {
    client.close();
  }
}

function joinError(address: StoreAddress, err: unknown): HushError {
  if (!isServiceError(err)) return new HushError('internal', `join failed: ${(err as Error).message}`);
  switch (err.code) {
    case grpc.status.PERMISSION_DENIED:
    case grpc.status.UNAUTHENTICATED:
      return new HushError('forbidden', `the store at ${address.display} refused to join this node: ${err.details}`);
    case grpc.status.INVALID_ARGUMENT:
      return new HushError('bad_request', `the store at ${address.display} rejected the join request: ${err.details}`);
    case grpc.status.UNAVAILABLE:
    case grpc.status.DEADLINE_EXCEEDED:
    case grpc.status.RESOURCE_EXHAUSTED: // the store's join slots are full: busy, not broken
      return new HushError('unavailable', `cannot join the store at ${address.display}: ${err.details}`);
    default:
      return new HushError('internal', `joining the store at ${address.display} failed: ${grpc.status[err.code] ?? err.code}: ${err.details}`);
  }
}
