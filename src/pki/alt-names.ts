/**
 * Subject alternative names for the store's server certificate. TLS clients
 * (node, Go, OpenSSL) match the host they dialled against SANs only, IP
 * addresses against IP entries only, so each host goes in as the right type.
 */
import { isIP } from 'node:net';
import { HushError } from '../errors/index.js';
import type { AltName } from './leaf.js';

/** Always present so that `hush up` and local tools can reach the store on loopback. */
export const LOOPBACK_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '::1'];

// RFC 1123 labels; a leading "*." wildcard is allowed as browsers and Go accept it.
const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/;

export function serverAltNames(hosts: readonly string[]): AltName[] {
  const seen = new Set<string>();
  const names: AltName[] = [];
  for (const raw of [...hosts, ...LOOPBACK_HOSTS]) {
    const name = toAltName(raw);
    const key = 'ip' in name ? `ip:${name.ip}` : `dns:${name.value}`;
    if (seen.has(key)) continue;
    seen.add(key);
    names.push(name);
  }
  return names;
}

function toAltName(raw: string): AltName {
  // "[::1]" is how IPv6 hosts appear next to a port; accept it as written.
  const host = raw.trim().replace(/^\[(.*)\]$/, '$1');
  if (isIP(host) !== 0) return { type: 7, ip: host };
  const dns = host.toLowerCase();
  if (dns.length > 253 || !DNS_NAME.test(dns)) {
    throw new HushError('bad_request', `not a host name or IP address: ${JSON.stringify(raw)}`);
  }
  return { type: 2, value: dns };
}
