/**
 * RSA-2048 key pairs from node:crypto. forge cannot make EC keys and its
 * pure-JS RSA key generation takes seconds; OpenSSL's takes well under one.
 * Private keys are PKCS#8 PEM, which node's tls, grpc-js and Go (docker CLI)
 * all read.
 */
import { createPublicKey, generateKeyPair as generateKeyPairCallback, generateKeyPairSync } from 'node:crypto';
import { HushError } from '../errors/index.js';

export interface KeyPair {
  keyPem: string;
  publicKeyPem: string;
}

const RSA_OPTIONS = {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
} as const;

/** Blocks the event loop for a generation (~0.1–0.5 s); long-running processes should prefer generateKeyPairAsync. */
export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', RSA_OPTIONS);
  return { keyPem: privateKey, publicKeyPem: publicKey };
}

/** Same key, generated on libuv's thread pool so an agent keeps serving reads while it renews. */
export function generateKeyPairAsync(): Promise<KeyPair> {
  return new Promise((resolve, reject) => {
    generateKeyPairCallback('rsa', RSA_OPTIONS, (err, publicKey, privateKey) => {
      if (err) reject(err);
      else resolve({ keyPem: privateKey, publicKeyPem: publicKey });
    });
  });
}

/** SPKI PEM of the public half of a private key. */
export function publicKeyPemOf(keyPem: string): string {
  try {
    return createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }).toString();
  } catch {
    throw new HushError('bad_request', 'not a PEM private key');
  }
}
