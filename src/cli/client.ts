/**
 * The HTTP API client of the CLI (admin API of the store, runtime API of an
 * agent). For the store it looks at
 * --host, then HUSH_HOST, then what `hush up`/`hush store` recorded in
 * HUSH_HOME, then the default socket.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { HushError, type ErrorCode } from '../errors/index.js';
import { DEFAULT_ADMIN_SOCKET, hushHome, readHomeConfig } from '../home/index.js';

export interface ClientOptions {
  host?: string;
}

export class ApiClient {
  private constructor(
    private readonly host: string,
    private readonly target: RequestOptions,
    private readonly send: typeof httpRequest,
  ) {}

  static async connect(options: ClientOptions): Promise<ApiClient> {
    const home = hushHome();
    const host = options.host || process.env.HUSH_HOST || (await readHomeConfig(home)).host || `unix://${DEFAULT_ADMIN_SOCKET}`;
    if (host.startsWith('unix://')) return new ApiClient(host, { socketPath: host.slice('unix://'.length) }, httpRequest);
    if (host.startsWith('https://')) {
      const url = new URL(host);
      const read = (file: string) => {
        try {
          return readFileSync(join(home, file));
        } catch {
          throw new HushError('bad_request', `${host} needs the admin client certificate: ${join(home, file)} is missing (set HUSH_HOME to the directory holding ca.pem, cert.pem, key.pem)`);
        }
      };
      return new ApiClient(host, { host: url.hostname, port: url.port || 2476, ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem'), minVersion: 'TLSv1.3' } as RequestOptions, httpsRequest as typeof httpRequest);
    }
    throw new HushError('bad_request', `unsupported host "${host}": use unix:///path/to/admin.sock or https://HOST:PORT`);
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.call<T>('POST', path, body ?? {});
  }

  put<T>(path: string, body?: unknown): Promise<T> {
    return this.call<T>('PUT', path, body ?? {});
  }

  delete<T = void>(path: string): Promise<T> {
    return this.call<T>('DELETE', path);
  }

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<T>((resolve, reject) => {
      const req = this.send(
        {
          ...this.target,
          method,
          path,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        },
        (res) => readResponse<T>(res).then(resolve, reject),
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
          reject(new HushError('unavailable', `cannot reach the hush store at ${this.host}: is it running? Start one with \`hush up\`, or point --host / HUSH_HOST at it`));
        } else if (err.code === 'EACCES') {
          reject(new HushError('forbidden', `permission denied on ${this.host}: the admin socket is root-only; run as root`));
        } else reject(err);
      });
      req.end(payload);
    });
  }
}

async function readResponse<T>(res: IncomingMessage): Promise<T> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const status = res.statusCode ?? 0;
  if (status >= 200 && status < 300) return (text ? JSON.parse(text) : undefined) as T;
  let error: { code?: ErrorCode; message?: string } | undefined;
  try {
    error = (JSON.parse(text) as { error?: { code?: ErrorCode; message?: string } }).error;
  } catch {
    // not JSON: fall through to a generic message
  }
  throw new HushError(error?.code ?? 'internal', error?.message ?? `store answered ${status}`);
}
