/**
 * The agent's runtime API (DESIGN: "Agent runtime API"): what `hush run`, or
 * a Docker/OCI hook, calls to register a container before starting it and to
 * unregister it after. JSON in and out; errors as {"error": {code, message}}.
 */
import express, { type Express, type Request, type Response } from 'express';
import { errorHandler, notFoundHandler } from '../http/index.js';
import type { HeldView } from './cache.js';
import type { ContainerRegistry } from './containers.js';
import { validateContainerRequest } from './runtime-validate.js';

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

  app.use(notFoundHandler);
  app.use(errorHandler('agent'));
  return app;
}
