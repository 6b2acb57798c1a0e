/** A minimal HTTPS client with a client certificate directory (ca.pem, cert.pem, key.pem), as the admin API's callers use. */
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import { join } from 'node:path';

export interface HttpsReply<T = unknown> {
  status: number;
  headers: IncomingHttpHeaders;
  body: T;
  text: string;
}

export function httpsCall<T = unknown>(url: string, certDir: string, method: string, path: string, body?: unknown): Promise<HttpsReply<T>> {
  const { hostname, port } = new URL(url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const tls = { ca: readFileSync(join(certDir, 'ca.pem')), cert: readFileSync(join(certDir, 'cert.pem')), key: readFileSync(join(certDir, 'key.pem')) };
  return new Promise((resolve, reject) => {
    const req = request(
      { host: hostname, port, method, path, ...tls, headers: payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON: callers look at `text`
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed as T, text });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
