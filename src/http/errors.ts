/**
 * Turns every error into the JSON shape of the contract:
 * {"error": {"code", "message"}}, with the status of the HushError's code.
 * One mapping for the store's admin API and the agent's runtime API; a layer
 * with an error of its own throws it as a HushError (the agent's decision
 * timeout is HushError 'timeout', 504).
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { HushError, isHushError } from '../errors/index.js';
import { log } from '../log/index.js';

/** The process whose log holds the details of an unexpected error; named in the answer. */
export type ServingProcess = 'store' | 'agent';

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
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
  log.error({ err }, 'unexpected error handling a request');
  return new HushError('internal', `internal error; see the ${servedBy} log`);
}

/** The last middleware of an express app: answers any error as JSON. */
export function errorHandler(servedBy: ServingProcess): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    const httpError = toHttpError(err, servedBy);
    res.status(httpError.status).json({ error: { code: httpError.code, message: httpError.message } });
  };
}

export const notFoundHandler: RequestHandler = (req, res) => {
  res.status(404).json({ error: { code: 'not_found', message: `no route for ${req.method} ${req.path}` } });
};
