/** Native admin routes for secrets: /v1/secrets. Responses never carry secret data. */
import { Router, type Request } from 'express';
import type { JSONSchemaType } from 'ajv';
import { HushError } from '../errors/index.js';
import { decodeBase64, validator } from '../http/index.js';
import {
  CHARSETS,
  generateEncoded,
  MAX_GENERATE_BYTES,
  MAX_KEEP_VERSIONS,
  MIN_GENERATE_BYTES,
  newSchedule,
  type Charset,
  type Propagation,
  type RandomSource,
  type ReadRecord,
} from '../rotation/index.js';
import type { SecretDetail, SecretStore } from '../store/index.js';
import { actorOf } from './audit-trail.js';

interface CreateSecretBody {
  name: string;
  data: string;
  labels?: Record<string, string>;
  keep?: number;
}

interface RotateSecretBody {
  data?: string;
  generate?: number;
  charset?: Charset;
  keep?: number;
}

interface RollbackBody {
  to: number;
}

interface ScheduleBody {
  every: string;
  generate: number;
  charset?: Charset;
}

const keepSchema = { type: 'integer', nullable: true, minimum: 1, maximum: MAX_KEEP_VERSIONS } as const;

const createSecretBody = validator<CreateSecretBody>('create secret', {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'data'],
  properties: {
    name: { type: 'string' },
    data: { type: 'string' },
    labels: { type: 'object', nullable: true, required: [], additionalProperties: { type: 'string' } },
    keep: keepSchema,
  },
} as JSONSchemaType<CreateSecretBody>);

const rotateSecretBody = validator<RotateSecretBody>('rotate secret', {
  type: 'object',
  additionalProperties: false,
  properties: {
    data: { type: 'string', nullable: true },
    generate: { type: 'integer', nullable: true, minimum: MIN_GENERATE_BYTES, maximum: MAX_GENERATE_BYTES },
    charset: { type: 'string', nullable: true, enum: [...CHARSETS] },
    keep: keepSchema,
  },
} as JSONSchemaType<RotateSecretBody>);

const rollbackBody = validator<RollbackBody>('rollback secret', {
  type: 'object',
  additionalProperties: false,
  required: ['to'],
  properties: { to: { type: 'integer', minimum: 1 } },
} as JSONSchemaType<RollbackBody>);

const scheduleBody = validator<ScheduleBody>('rotation schedule', {
  type: 'object',
  additionalProperties: false,
  required: ['every', 'generate'],
  properties: {
    every: { type: 'string', maxLength: 64 },
    generate: { type: 'integer', minimum: MIN_GENERATE_BYTES, maximum: MAX_GENERATE_BYTES },
    charset: { type: 'string', nullable: true, enum: [...CHARSETS] },
  },
} as JSONSchemaType<ScheduleBody>);

/** POST /v1/secrets after body parsing: shared by the express route and the fast path (fast-create.ts). */
export async function createSecret(secrets: SecretStore, requestBody: unknown, actor?: string): Promise<{ id: string; name: string; version: number }> {
  const body = createSecretBody(requestBody);
  const created = await secrets.create(body.name, decodeBase64('data', body.data), body.labels ?? {}, { actor, keep: body.keep });
  return { id: created.id, name: created.name, version: created.version };
}

/** How far versions have reached and who read them: undefined while the cluster side (the dispatcher) is not up. */
export type ClusterView = () =>
  | {
      propagation(secret: string, versions: number[]): Promise<Propagation[]>;
      reads(query: { secret?: string }): Promise<ReadRecord[]>;
    }
  | undefined;

/** A reader as `secret inspect` shows it under its version: the secret and version are the version's own. */
const reader = ({ secret: _secret, version: _version, reportedAt: _reportedAt, ...rest }: ReadRecord) => rest;

export function secretRoutes(secrets: SecretStore, randomBytes: RandomSource, clusterView: ClusterView): Router {
  const router = Router();

  /**
   * The detail with, when the cluster side can tell, each version's
   * propagation and readers (the containers that read it, held or released),
   * and the containers that still hold a version older than the current one.
   */
  const withPropagation = async (detail: SecretDetail) => {
    const cluster = clusterView();
    if (!cluster) return detail;
    const reached = await cluster.propagation(detail.name, detail.versions.map((v) => v.version));
    const reads = await cluster.reads({ secret: detail.name });
    return {
      ...detail,
      versions: detail.versions.map((v, i) => ({ ...v, propagation: reached[i], readers: reads.filter((r) => r.version === v.version).map(reader) })),
      olderVersionHolders: reads.filter((r) => r.version < detail.version && r.state === 'held').map(({ reportedAt: _reportedAt, ...rest }) => rest),
    };
  };

  router.post('/', async (req, res) => {
    res.status(201).json(await createSecret(secrets, req.body, actorOf(req)));
  });

  router.get('/', async (_req, res) => {
    res.json(await secrets.list());
  });

  router.get('/:name', async (req, res) => {
    res.json(await withPropagation(await secrets.inspect(req.params.name)));
  });

  router.get('/:name/versions', async (req, res) => {
    const detail = await withPropagation(await secrets.inspect(req.params.name));
    res.json(detail.versions.map((v) => ({ ...v, current: v.version === detail.version })));
  });

  router.get('/:name/propagation', async (req, res) => {
    const detail = await secrets.inspect(req.params.name);
    const version = versionQuery(req, detail.version);
    if (!detail.versions.some((v) => v.version === version)) throw new HushError('not_found', `secret "${detail.name}" has no version ${version} (it keeps versions ${detail.versions[0]!.version} to ${detail.version})`);
    const cluster = clusterView();
    if (!cluster) throw new HushError('unavailable', 'the cluster side of the store is still starting; try again in a moment');
    res.json((await cluster.propagation(detail.name, [version]))[0]);
  });

  router.delete('/:name', async (req, res) => {
    await secrets.remove(req.params.name);
    res.status(204).end();
  });

  router.post('/:name/rotate', async (req, res) => {
    const body = rotateSecretBody(req.body);
    if ((body.data === undefined) === (body.generate === undefined)) throw new HushError('bad_request', 'rotate secret: give exactly one of "data" (base64) or "generate" (a byte count)');
    if (body.charset !== undefined && body.generate === undefined) throw new HushError('bad_request', 'rotate secret: "charset" goes with "generate"');
    const data = body.data !== undefined ? decodeBase64('data', body.data) : generateEncoded(body.generate!, body.charset ?? 'raw', randomBytes);
    try {
      res.status(201).json(await secrets.rotate(req.params.name, data, { actor: actorOf(req), keep: body.keep }));
    } finally {
      data.fill(0);
    }
  });

  router.post('/:name/rollback', async (req, res) => {
    const body = rollbackBody(req.body);
    res.status(201).json(await secrets.rollback(req.params.name, body.to, { actor: actorOf(req) }));
  });

  router.put('/:name/schedule', async (req, res) => {
    const body = scheduleBody(req.body);
    res.json(await secrets.setSchedule(req.params.name, newSchedule(body.every, body.generate, body.charset ?? 'raw', new Date())));
  });

  router.delete('/:name/schedule', async (req, res) => {
    res.json(await secrets.setSchedule(req.params.name, undefined));
  });

  return router;
}

function versionQuery(req: Request, current: number): number {
  const raw = req.query.version;
  if (raw === undefined) return current;
  if (typeof raw !== 'string' || !/^[1-9][0-9]{0,15}$/.test(raw)) throw new HushError('bad_request', `version must be a version number, not ${JSON.stringify(raw)}`);
  return Number(raw);
}
