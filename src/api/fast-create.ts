/**
 * `POST /v1/secrets` on plain node:http instead of express. It is the hot
 * route (every create from the CLI, scripts and compose deploys), and
 * express's per-request plumbing (prototype swaps, the router's layer walk,
 * body-parser/raw-body/type-is, res.json) cost ~200 µs of CPU per request,
 * more than the store's own work, encryption and durable append included:
 * bench/store-writes.ts measured 310–380 µs of store CPU per create through
 * express and 105–130 µs through this path.
 *
 * It answers exactly as the express route does, using the same pieces: the
 * body validator (createSecret), role check, lock check and error shape. It
 * takes only plain requests, decided from the headers alone; anything else
 * (another content type or charset, a content encoding, chunked, a body over
 * the limit, another spelling of the path) goes to express untouched.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HushError } from '../errors/index.js';
import { toHttpError } from '../http/index.js';

export const CREATE_SECRET_PATH = '/v1/secrets';

/** True when express would parse this request's body as UTF-8 JSON without inflating it and within `bodyLimit`. */
export function isPlainCreateRequest(req: IncomingMessage, bodyLimit: number): boolean {
  if (req.method !== 'POST' || req.url !== CREATE_SECRET_PATH) return false;
  const { headers } = req;
  const type = headers['content-type'];
  if (type !== 'application/json' && type !== 'application/json; charset=utf-8') return false;
  if (headers['content-encoding'] !== undefined || headers['transfer-encoding'] !== undefined) return false;
  const length = headers['content-length'];
  return length !== undefined && Number(length) <= bodyLimit;
}

export interface FastCreateSteps {
  /** The checks express runs after body parsing, in its order: role, then lock. Throw to refuse. */
  admit: (req: IncomingMessage) => void;
  create: (body: unknown, req: IncomingMessage) => Promise<unknown>;
}

/** Serves a request that passed isPlainCreateRequest. */
export function fastCreateHandler(steps: FastCreateSteps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    // An aborted request has no one left to answer; listening keeps the error from being thrown.
    req.on('error', () => {});
    req.on('end', () => {
      void respond(steps, req, res, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    });
  };
}

async function respond(steps: FastCreateSteps, req: IncomingMessage, res: ServerResponse, raw: Buffer): Promise<void> {
  try {
    const body = parseJsonBody(raw);
    steps.admit(req);
    sendJson(res, 201, await steps.create(body, req));
  } catch (err) {
    const error = toHttpError(err);
    sendJson(res, error.status, { error: { code: error.code, message: error.message } });
  }
}

/**
 * express.json({strict: true}) semantics: a leading BOM is dropped (its
 * decoder does that), an empty body is {}, and only an object or an array
 * may be at the top; anything else is the same 400.
 */
function parseJsonBody(raw: Buffer): unknown {
  let text = raw.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (typeof value !== 'object' || value === null) throw new HushError('bad_request', 'malformed JSON in request body');
  return value;
}

/** What express's res.status(s).json(body) writes. */
function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
