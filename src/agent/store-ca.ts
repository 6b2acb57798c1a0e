/**
 * Trust without trust-on-first-use: before the agent sends the store anything
 * (not even its token), it looks at the certificate chain the store presents,
 * takes the self-signed root in it, and accepts that root as the cluster CA
 * only if its SHA-256 fingerprint is the one in the join token.
 * Only then does it speak gRPC, trusting that CA and nothing else.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { HushError } from '../errors/index.js';
import { certFingerprint, fingerprintMatches } from '../pki/index.js';
import type { StoreAddress } from './address.js';

const DEFAULT_TIMEOUT_MS = 10_000;

/** The store's CA certificate (PEM) once its fingerprint matched; else a HushError saying what was presented. */
export async function fetchVerifiedStoreCa(address: StoreAddress, expectedFingerprint: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
  const chain = await presentedChain(address, timeoutMs);
  // During a CA rotation the store presents both roots (its leaf, the cross certificate, the old and the new CA):
  // a token for either CA finds its own among them. Outside a rotation there is one root, at the end.
  const roots = chain.filter(isSelfSigned);
  if (roots.length === 0) {
    const root = chain[chain.length - 1]!;
    throw new HushError(
      'unauthorized',
      `the store at ${address.display} did not present its CA certificate (its chain ends at "${root.subject.replace(/\n/g, ', ')}", which is not self-signed); it cannot be checked against the join token`,
    );
  }
  const match = roots.find((root) => fingerprintMatches(expectedFingerprint, root.toString()));
  if (!match) {
    throw new HushError(
      'unauthorized',
      `the store at ${address.display} presents CA ${roots.map((r) => certFingerprint(r.toString())).join(' and ')}, but the join token expects ${expectedFingerprint.toLowerCase()}: wrong store or an impostor`,
    );
  }
  return match.toString();
}

/**
 * The peer's chain, leaf first, as TLS delivered it. Certificate checks are
 * off for this one connection on purpose: nothing is trusted or sent over it;
 * it only shows which CA the store claims, which the caller then checks.
 */
function presentedChain(address: StoreAddress, timeoutMs: number): Promise<X509Certificate[]> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: address.host,
      port: address.port,
      ...(isIP(address.host) ? {} : { servername: address.host }),
      rejectUnauthorized: false,
      // The store speaks gRPC (HTTP/2); offering h2 keeps its listener from treating us as a broken client.
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.2',
    });
    let settled = false;
    const finish = (err: Error | undefined, chain?: X509Certificate[]) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(chain!);
    };
    const timer = setTimeout(
      () => finish(new HushError('unavailable', `the store at ${address.display} did not complete a TLS handshake within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once('secureConnect', () => {
      try {
        finish(undefined, walkChain(socket.getPeerCertificate(true)));
      } catch (err) {
        finish(err as Error);
      }
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      finish(new HushError('unavailable', `cannot reach the store at ${address.display}: ${err.code ?? err.message}`));
    });
  });
}

function walkChain(leaf: tls.DetailedPeerCertificate): X509Certificate[] {
  if (!leaf || !leaf.raw) throw new HushError('unauthorized', 'the store presented no certificate');
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  let current: tls.DetailedPeerCertificate | undefined = leaf;
  // A self-signed root points at itself; the set also stops any other loop.
  while (current?.raw && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256);
    chain.push(new X509Certificate(current.raw));
    current = current.issuerCertificate;
  }
  return chain;
}

function isSelfSigned(cert: X509Certificate): boolean {
  try {
    return cert.subject === cert.issuer && cert.verify(cert.publicKey);
  } catch {
    return false;
  }
}
