/** Native admin routes for secrets: /v1/secrets. Responses never carry secret data. */
import { Router } from 'express';
import type { JSONSchemaType } from 'ajv';
import { HushError } from '../errors/index.js';
import { decodeBase64, validator } from '../http/index.js';
import { generateValue, MAX_GENERATE_BYTES, MIN_GENERATE_BYTES, type RandomSource } from '../rotation/index.js';
import type { SecretStore } from '../store/index.js';

interface CreateSecretBody {
  name: string;
  data: string;
  labels?: Record<string, string>;
}

interface RotateSecretBody {
  data?: string;
  generate?: number;
}

const createSecretBody = validator<CreateSecretBody>('create secret', {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'data'],
  properties: {
    name: { type: 'string' },
    data: { type: 'string' },
    labels: { type: 'object', nullable: true, required: [], additionalProperties: { type: 'string' } },
  },
} as JSONSchemaType<CreateSecretBody>);

const rotateSecretBody = validator<RotateSecretBody>('rotate secret', {
  type: 'object',
  additionalProperties: false,
  properties: {
    data: { type: 'string', nullable: true },
    generate: { type: 'integer', nullable: true, minimum: MIN_GENERATE_BYTES, maximum: MAX_GENERATE_BYTES },
  },
} as JSONSchemaType<RotateSecretBody>);

/** POST /v1/secrets after body parsing: shared by the express route and the fast path (fast-create.ts). */
export async function createSecret(secrets: SecretStore, requestBody: unknown): Promise<{ id: string; name: string; version: number }> {
  const body = createSecretBody(requestBody);
  const created = await secrets.create(body.name, decodeBase64('data', body.data), body.labels ?? {});
  return { id: created.id, name: created.name, version: created.version };
}

export function secretRoutes(secrets: SecretStore, randomBytes: RandomSource): Router {
  const router = Router();

  router.post('/', async (req, res) => {
    res.status(201).json(await createSecret(secrets, req.body));
  });

  router.get('/', async (_req, res) => {
    res.json(await secrets.list());
  });

  router.get('/:name', async (req, res) => {
    res.json(await secrets.inspect(req.params.name));
  });

  router.delete('/:name', async (req, res) => {
    await secrets.remove(req.params.name);
    res.status(204).end();
  });

  router.post('/:name/rotate', async (req, res) => {
    const body = rotateSecretBody(req.body);
    if ((body.data === undefined) === (body.generate === undefined)) throw new HushError('bad_request', 'rotate secret: give exactly one of "data" (base64) or "generate" (a byte count)');
    const data = body.data !== undefined ? decodeBase64('data', body.data) : generateValue(body.generate!, randomBytes);
    const rotated = await secrets.rotate(req.params.name, data);
    res.status(201).json(rotated);
  });

  return router;
}
