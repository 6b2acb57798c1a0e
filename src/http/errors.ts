/**
 * Turns every error into the JSON shape of the contract:
 * {"error": {"code", "message"}}, with the status of the HushError's code.
 * One mapping for the store's admin API and the agent's runtime API; a layer
 * with an error of its own throws it as a HushError (the agent's decision
 * timeout is HushError 'timeout', 504).
 */
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { HushError, isHushError } from '../errors/index.js';
import { log } from '../log/index.js';

/** The process whose log holds the details of an unexpected error; named in the answer. */
export type ServingProcess = 'store' | 'agent';

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
  /** http-errors' mark of an error caused by the request, whose message may be shown. */
  expose?: boolean;
}

export function toHttpError(err: unknown, servedBy: ServingProcess = 'store'): HushError {
  if (isHushError(err)) return err;
  const parserError = err as BodyParserError;
  switch (parserError?.type) {
    case 'entity.parse.failed':
      return new HushError('bad_request', 'malformed JSON in request body');
    case 'entity.too.large':
      return new HushError('too_large', `request body is larger than ${parserError.limit} bytes`);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new HushError('bad_request', parserError.message);
  }
  // express's router could not decode a path parameter ("/v1/secrets/%ff"); found by the random-request suite (was a 500).
  if (err instanceof URIError && parserError.status === 400) return new HushError('bad_request', 'malformed percent-encoding in the request path');
  // Any other fault of the request that the body parser found, e.g. `Content-Encoding: gzip` over bytes that do not inflate
  // (found by the random-request suite: it was a 500 and an error in the log).
  const status = parserError?.status ?? 0;
  if (parserError?.expose === true && status >= 400 && status < 500) {
    return new HushError(status === 413 ? 'too_large' : 'bad_request', `request body could not be read: ${parserError.message}`);
  }
  log.error({ err }, 'unexpected error handling a request');
  return new HushError('internal', `internal error; see the ${servedBy} log`);
}

/** The body an error goes out in: ours, or Docker's {"message"} on the Docker-compatible routes (the docker CLI prints it). */
export type ErrorDialect = 'hush' | 'docker';

export function sendError(res: Response, error: HushError, dialect: ErrorDialect = 'hush'): void {
  if (dialect === 'docker') {
    // The docker CLI decodes an error body only when Content-Type is exactly "application/json" (no charset);
    // otherwise it prints the raw JSON. express (res.json, res.set) would add "; charset=utf-8".
    res.status(error.status).setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ message: error.message }));
    return;
  }
  res.status(error.status).json({ error: { code: error.code, message: error.message } });
}

/** The last middleware of an express app: answers any error as JSON, in the dialect of the request's route. */
export function errorHandler(servedBy: ServingProcess, dialectOf: (req: Request) => ErrorDialect = () => 'hush'): ErrorRequestHandler {
  return (err, req, res, _next) => sendError(res, toHttpError(err, servedBy), dialectOf(req));
}

export const notFoundHandler: RequestHandler = (req, res) => {
  sendError(res, new HushError('not_found', `no route for ${req.method} ${req.path}`));
};
