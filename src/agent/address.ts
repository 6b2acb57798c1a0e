/** The store's node-protocol address as given on the command line: HOST:PORT, [IPv6]:PORT, or HOST (port 2477). */
import { isIP } from 'node:net';
import { HushError } from '../errors/index.js';

export const DEFAULT_NODE_PORT = 2477;

export interface StoreAddress {
  host: string;
  port: number;
  /** What grpc-js dials: host:port, with brackets around an IPv6 host. */
  target: string;
  /** As the user wrote it, for messages. */
  display: string;
}

export function parseStoreAddress(text: string): StoreAddress {
  const display = text.trim();
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(display);
  const host = match?.[1] ?? match?.[2];
  if (!match || !host) throw new HushError('bad_request', `store address "${text}" is not HOST:PORT`);
  if (match[1] !== undefined && isIP(host) !== 6) throw new HushError('bad_request', `store address "${text}": only IPv6 addresses go in brackets`);
  const port = match[3] === undefined ? DEFAULT_NODE_PORT : Number(match[3]);
  if (port < 1 || port > 65535) throw new HushError('bad_request', `store address "${text}": port ${port} is out of range`);
  return { host, port, target: `${isIP(host) === 6 ? `[${host}]` : host}:${port}`, display };
}

/**
 * `--store`: one address, or several store replicas (sharing etcd) separated
 * by commas; the agent fails over from one to the next.
 */
export function parseStoreAddresses(text: string): StoreAddress[] {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.some((p) => p === '')) throw new HushError('bad_request', `store addresses "${text}": an empty address between commas`);
  const addresses = parts.map(parseStoreAddress);
  const seen = new Set<string>();
  for (const a of addresses) {
    if (seen.has(a.target)) throw new HushError('bad_request', `store addresses "${text}": ${a.display} is given twice`);
    seen.add(a.target);
  }
  return addresses;
}
