/**
 * The agent's runtime API (DESIGN: "Agent runtime API"): what `hush run`, or
 * a Docker/OCI hook, calls to register a container before starting it and to
 * unregister it after. JSON in and out; errors as {"error": {code, message}}.
 */
import express, { type ErrorRequestHandler, type Express, type Request, type Response } from 'express';
import { HushError, isHushError } from '../errors/index.js';
import { log } from '../log/index.js';
import type { HeldView } from './cache.js';
import type { ContainerRegistry } from './containers.js';
import { validateContainerRequest } from './runtime-validate.js';
import { DecisionTimeout } from './store-link.js';

export interface RuntimeApiDeps {
  containers: ContainerRegistry;
  status: () => object;
  /**
   * Names and versions held, never values; only wired up when debugging is
   * switched on, so tests can assert what a node received.
   */
  held?: () => HeldView;
}

export function createRuntimeApp(deps: RuntimeApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(express.json({ limit: '16kb', strict: true }));

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/v1/status', (_req, res) => {
    res.json(deps.status());
  });
  app.get('/v1/containers', (_req, res) => {
    res.json(deps.containers.list());
  });
  app.get('/v1/containers/:id', (req: Request<{ id: string }>, res: Response) => {
    res.json(deps.containers.get(req.params.id));
  });
  app.post('/v1/containers', async (req: Request, res: Response) => {
    const container = validateContainerRequest(req.body);
    res.status(201).json(await deps.containers.start(container));
  });
  app.delete('/v1/containers/:id', async (req: Request<{ id: string }>, res: Response) => {
    await deps.containers.stop(req.params.id);
    res.status(204).end();
  });
  if (deps.held) {
    const held = deps.held;
    app.get('/v1/debug/held', (_req, res) => {
      res.json(held());
    });
  }

  app.use((req, res) => {
    res.status(404).json({ error: { code: 'not_found', message: `no route for ${req.method} ${req.path}` } });
  });
  app.use(errorHandler);
  return app;
}

interface BodyParserError extends Error {
  type?: string;
  limit?: number;
}

const errorHandler: ErrorRequestHandler = (err, _req, res, _next) => {
  const { status, code, message } = toRuntimeError(err);
  res.status(status).json({ error: { code, message } });
};

function toRuntimeError(err: unknown): { status: number; code: string; message: string } {
  if (isHushError(err)) return { status: err.status, code: err.code, message: err.message };
  if (err instanceof DecisionTimeout) return { status: 504, code: 'timeout', message: err.message };
  const parserError = err as BodyParserError;
  switch (parserError?.type) {
    case 'entity.parse.failed':
      return { status: 400, code: 'bad_request', message: 'malformed JSON in request body' };
    case 'entity.too.large':
      return { status: 413, code: 'too_large', message: `request body is larger than ${parserError.limit} bytes` };
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return { status: 400, code: 'bad_request', message: parserError.message };
  }
  log.error({ err }, 'unexpected error in the agent runtime API');
  const internal = new HushError('internal', 'internal error; see the agent log');
  return { status: internal.status, code: internal.code, message: internal.message };
}
