/**
 * The admin REST application. The same app is served on the root-only unix
 * socket and (later) on HTTPS with client certificates.
 */
import express, { type Express } from 'express';
import type { JSONSchemaType } from 'ajv';
import { HushError } from '../errors/index.js';
import type { Backend, Keyring, SecretStore } from '../store/index.js';
import { errorHandler, notFoundHandler } from './http-errors.js';
import { secretRoutes } from './secret-routes.js';
import { validator } from './validate.js';

export interface AdminContext {
  backend: Backend;
  keyring: Keyring;
  secrets: SecretStore;
  randomBytes: (n: number) => Uint8Array;
}

const unlockBody = validator<{ key: string }>('unlock', {
  type: 'object',
  additionalProperties: false,
  required: ['key'],
  properties: { key: { type: 'string' } },
} as JSONSchemaType<{ key: string }>);

/** Routes that work while the store is locked. */
const OPEN_WHILE_LOCKED = new Set(['/healthz', '/v1/unlock']);

export function createAdminApp(ctx: AdminContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Base64 makes the body 4/3 of the value; leave room for name and labels.
  const bodyLimit = Math.ceil((ctx.secrets.maxValueBytes * 4) / 3) + 64 * 1024;
  app.use(express.json({ limit: bodyLimit, strict: true }));

  app.use((req, _res, next) => {
    if (ctx.keyring.locked && !OPEN_WHILE_LOCKED.has(req.path)) throw new HushError('locked', 'the store is locked; run `hush unlock` and paste the unlock key');
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: ctx.keyring.locked ? 'locked' : 'ok', revision: ctx.backend.revision() });
  });

  app.post('/v1/unlock', (req, res) => {
    ctx.keyring.unlock(unlockBody(req.body).key);
    res.json({ status: 'ok' });
  });

  app.post('/v1/key/rotate', async (_req, res) => {
    res.json(await ctx.secrets.rotateKek());
  });

  app.use('/v1/secrets', secretRoutes(ctx.secrets, ctx.randomBytes));

  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
