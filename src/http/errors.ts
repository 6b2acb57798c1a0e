/** Turns every error into the JSON shape of the contract: {"error": {"code", "message"}}. */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { HushError, isHushError } from '../errors/index.js';
import { log } from '../log/index.js';

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
}

export function toHttpError(err: unknown): HushError {
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
  return new HushError('internal', 'internal error; see the store log');
}

export const errorHandler: ErrorRequestHandler = (err, _req, res, _next) => {
  const httpError = toHttpError(err);
  res.status(httpError.status).json({ error: { code: httpError.code, message: httpError.message } });
};

export const notFoundHandler: RequestHandler = (req, res) => {
  res.status(404).json({ error: { code: 'not_found', message: `no route for ${req.method} ${req.path}` } });
};
