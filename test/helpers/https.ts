/** A minimal HTTPS client with a client certificate directory (ca.pem, cert.pem, key.pem), as the admin API's callers use. */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { readReply, type Reply } from './http.js';

export function httpsCall<T = unknown>(url: string, certDir: string, method: string, path: string, body?: unknown): Promise<Reply<T>> {
  const { hostname, port } = new URL(url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const tls = { ca: readFileSync(join(certDir, 'ca.pem')), cert: readFileSync(join(certDir, 'cert.pem')), key: readFileSync(join(certDir, 'key.pem')) };
  return new Promise((resolve, reject) => {
    const req = request(
      { host: hostname, port, method, path, ...tls, headers: payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {} },
      (res) => readReply<T>(res).then(resolve, reject),
    );
    req.on('error', reject);
    req.end(payload);
  });
}
