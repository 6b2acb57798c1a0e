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
