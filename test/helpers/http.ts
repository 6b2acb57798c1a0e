/** A minimal HTTP client over a unix socket, for talking to the store and the agent as a client would. */
import { Agent, request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';

/** The body of every error reply: `{error: {code, message}}`. */
export interface ErrorBody {
  error: { code: string; message: string };
}

export interface Reply<T = unknown> {
  status: number;
  headers: IncomingHttpHeaders;
  body: T;
  text: string;
}

const agents = new Map<string, Agent>();

export function call<T = unknown>(socketPath: string, method: string, path: string, body?: unknown, rawBody?: string | Buffer, headers: Record<string, string> = {}): Promise<Reply<T>> {
  const payload = rawBody !== undefined ? Buffer.from(rawBody) : body !== undefined ? Buffer.from(JSON.stringify(body)) : undefined;
  let agent = agents.get(socketPath);
  if (!agent) agents.set(socketPath, (agent = new Agent({ keepAlive: true, maxSockets: 64 })));
  return send<T>(agent, socketPath, method, path, payload, headers).catch((err: NodeJS.ErrnoException & { reusedSocket?: boolean }) => {
    // A kept-alive connection the server closed for idleness just as it was reused (Node's documented
    // race): the request never reached the server, so sending it again on a new connection is safe.
    if (err.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) return send<T>(agent, socketPath, method, path, payload, headers);
    throw err;
  });
}

function send<T>(agent: Agent, socketPath: string, method: string, path: string, payload: Buffer | undefined, headers: Record<string, string>): Promise<Reply<T>> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, method, path, agent, headers: { ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}), ...headers } },
      (res) => readReply<T>(res).then(resolve, reject),
    );
    req.on('error', (err) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
    req.end(payload);
  });
}

/** Reads a response to its end: status, headers, the text and, when it is JSON, the parsed body. */
export function readReply<T>(res: IncomingMessage): Promise<Reply<T>> {
  return new Promise((resolve, reject) => {
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
  });
}

export function closeClients(): void {
  for (const agent of agents.values()) agent.destroy();
  agents.clear();
}

/** What a one-off request got: the status and text, or how the connection closed before a reply (a refused large body may close it mid-send). */
export type OnceReply = { status: number; text: string } | { closed: string };

/**
 * One raw request on a connection of its own, never rejecting: the body as
 * bytes with its content-length (none without a body), a content type only
 * when given (Docker sends none to plugins).
 */
export function sendOnce(socketPath: string, r: { method: string; path: string; body?: string; contentType?: string }): Promise<OnceReply> {
  return new Promise((resolve) => {
    const payload = r.body === undefined ? undefined : Buffer.from(r.body, 'utf8');
    const headers: Record<string, string> = {};
    if (payload) headers['content-length'] = String(payload.length);
    if (r.contentType !== undefined) headers['content-type'] = r.contentType;
    const req = request({ socketPath, method: r.method, path: r.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => resolve({ closed: err.message }));
    });
    req.on('error', (err) => resolve({ closed: err.message }));
    req.end(payload);
  });
}
