/**
 * Turns every error into the JSON shape of the contract: {"error": {"code", "message"}};
 * on the Docker-compatible paths, Docker's {"message"}, which the docker CLI prints.
 */
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { isDockerPath } from './docker-routes.js';
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

function send(res: Response, docker: boolean, error: HushError): void {
  if (docker) {
    // The docker CLI decodes an error body only when Content-Type is exactly "application/json" (no charset);
    // otherwise it prints the raw JSON. express (res.json, res.set) would add "; charset=utf-8".
    res.status(error.status).setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ message: error.message }));
    return;
  }
  res.status(error.status).json({ error: { code: error.code, message: error.message } });
}

export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  send(res, isDockerPath(req.path), toHttpError(err));
};

export const notFoundHandler: RequestHandler = (req, res) => {
  if (isDockerPath(req.path)) {
    // What a docker CLI user sees after `docker service ls`, `docker ps`...: say what does work.
    send(res, true, new HushError('not_found', `hush serves only Docker's secrets API (docker secret create|ls|inspect|rm), not ${req.method} ${req.path}; use the hush CLI for the rest`));
    return;
  }
  send(res, false, new HushError('not_found', `no route for ${req.method} ${req.path}`));
};
