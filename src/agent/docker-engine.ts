/**
 * The few Docker Engine API calls the volume plugin needs: who a container
 * is (inspect), when containers start (the event stream), and a signal to
 * one (kill). The agent finds dockerd with its own --docker-host and never
 * reads DOCKER_HOST: users point that at hush's own Docker-compatible API
 * (the store), which is not a daemon that runs containers.
 *
 * API version 1.41 (Docker 20.10, Debian 12's docker.io): newer daemons
 * still serve it (their minimum is far older).
 */
import { request, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { HushError } from '../errors/index.js';

const API = '/v1.41';
/** An inspect or kill that takes longer means dockerd is stuck; the caller logs and moves on. */
const CALL_TIMEOUT_MS = 10_000;

export interface DockerContainer {
  Id: string;
  Name: string;
  State: { Pid: number; Running: boolean };
  Config: { Labels: Record<string, string> | null };
  Mounts: { Type: string; Name?: string; Driver?: string; Destination: string }[];
}

export interface DockerEvent {
  Type: string;
  Action: string;
  id?: string;
  time?: number;
  timeNano?: number;
}

type Endpoint = { socketPath: string } | { host: string; port: number };

/** unix:///path or tcp://HOST:PORT (plain HTTP, as dockerd serves it without TLS). */
export function parseDockerHost(value: string): Endpoint {
  if (value.startsWith('unix://')) {
    const socketPath = value.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw new HushError('bad_request', `--docker-host "${value}": a unix socket needs an absolute path, e.g. unix:///var/run/docker.sock`);
    return { socketPath };
  }
  const tcp = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/.exec(value);
  if (tcp) return { host: tcp[1].replace(/^\[|\]$/g, ''), port: Number(tcp[2]) };
  throw new HushError('bad_request', `--docker-host "${value}" is not unix:///path or tcp://HOST:PORT`);
}

export class DockerEngine {
  readonly #endpoint: Endpoint;
  readonly display: string;

  constructor(host: string) {
    this.#endpoint = parseDockerHost(host);
    this.display = host;
  }

  async inspect(id: string): Promise<DockerContainer> {
    return JSON.parse(await this.#call('GET', `/containers/${encodeURIComponent(id)}/json`)) as DockerContainer;
  }

  async kill(id: string, signal: NodeJS.Signals): Promise<void> {
    await this.#call('POST', `/containers/${encodeURIComponent(id)}/kill?signal=${signal}`);
  }

  /**
   * Follows container start events from `sinceSeconds` on (dockerd replays
   * the ones it still holds, so a start that happened while the stream was
   * (re)connecting is not missed). Returns a function that closes the stream;
   * `onEnd` is called once when it ends for any other reason.
   */
  watchStarts(sinceSeconds: number, onEvent: (event: DockerEvent) => void, onEnd: (err: Error) => void): () => void {
    const filters = encodeURIComponent(JSON.stringify({ type: ['container'], event: ['start'] }));
    let closed = false;
    let ended = false;
    const end = (err: Error) => {
      if (closed || ended) return;
      ended = true;
      onEnd(err);
    };
    const req: ClientRequest = request({ ...this.#endpoint, method: 'GET', path: `${API}/events?since=${sinceSeconds}&filters=${filters}` } satisfies RequestOptions, (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        res.resume();
        end(new Error(`dockerd answered ${res.statusCode} to GET /events`));
        return;
      }
      let pending = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        pending += chunk;
        // One JSON object per line.
        let newline: number;
        while ((newline = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, newline).trim();
          pending = pending.slice(newline + 1);
          if (!line) continue;
          try {
            onEvent(JSON.parse(line) as DockerEvent);
          } catch {
            // A line we cannot read is not an event we can act on.
          }
        }
      });
      res.on('end', () => end(new Error('dockerd closed the event stream')));
      res.on('error', end);
    });
    req.on('error', end);
    req.end();
    return () => {
      closed = true;
      req.destroy();
    };
  }

  #call(method: string, path: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request({ ...this.#endpoint, method, path: `${API}${path}`, timeout: CALL_TIMEOUT_MS }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(body);
          let message = body.trim();
          try {
            message = (JSON.parse(body) as { message?: string }).message ?? message;
          } catch {
            // not JSON: keep the text
          }
          reject(new HushError(status === 404 ? 'not_found' : 'unavailable', `dockerd (${this.display}) answered ${status} to ${method} ${path}: ${message}`));
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new HushError('timeout', `dockerd (${this.display}) did not answer ${method} ${path} within ${CALL_TIMEOUT_MS / 1000} s`)));
      req.on('error', (err) => reject(err instanceof HushError ? err : new HushError('unavailable', `cannot reach dockerd at ${this.display}: ${err.message}`)));
      req.end();
    });
  }
}
