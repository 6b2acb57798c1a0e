/**
 * Compose deploys and stacks: POST /v1/deploy (a plan the CLI resolved from
 * compose files), GET /v1/stacks, DELETE /v1/stacks/:name. The body is
 * checked here (JSON schema, base64, each service by acl) and again by the
 * store (names, labels, values, references, ownership), which applies it as
 * one transaction. Responses name actions, never values.
 */
import express, { Router, type RequestHandler } from 'express';
import type { JSONSchemaType } from 'ajv';
import * as acl from '../acl/index.js';
import { HushError } from '../errors/index.js';
import type { DeploySecret, ServiceStore, StackStore } from '../store/index.js';
import { decodeBase64, validator } from '../http/index.js';
import { actorOf } from './audit-trail.js';

export const DEPLOY_PATH = '/v1/deploy';

/**
 * A deploy carries every value of a project at once, so its body may be
 * larger than one secret's: up to 16 values at the per-secret limit (about
 * 10.7 MiB with the default 500 KiB), never less than the ordinary limit.
 */
export const DEPLOY_VALUES_PER_BODY = 16;

/** Plans bigger than this are refused before any work: a compose project is tens of objects, not thousands. */
const MAX_OBJECTS = 1000;

interface DeployBody {
  project: string;
  secrets: { key: string; name: string; external: boolean; labels: Record<string, string>; data?: string }[];
  services: { name: string; grants: object[]; constraints: string[] }[];
  prune?: boolean;
  dryRun?: boolean;
}

const deployBody = validator<DeployBody>('deploy', {
  type: 'object',
  additionalProperties: false,
  required: ['project', 'secrets', 'services'],
  properties: {
    project: { type: 'string' },
    secrets: {
      type: 'array',
      maxItems: MAX_OBJECTS,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['key', 'name', 'external', 'labels'],
        properties: {
          key: { type: 'string', minLength: 1, maxLength: 256 },
          name: { type: 'string' },
          external: { type: 'boolean' },
          labels: { type: 'object', required: [], additionalProperties: { type: 'string' } },
          data: { type: 'string', nullable: true },
        },
      },
    },
    services: {
      type: 'array',
      maxItems: MAX_OBJECTS,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'grants', 'constraints'],
        properties: {
          name: { type: 'string' },
          // Each grant is checked by acl (fields, targets, modes, ids), as for POST /v1/services.
          grants: { type: 'array', maxItems: MAX_OBJECTS, items: { type: 'object', required: [] } },
          constraints: { type: 'array', maxItems: MAX_OBJECTS, items: { type: 'string' } },
        },
      },
    },
    prune: { type: 'boolean', nullable: true },
    dryRun: { type: 'boolean', nullable: true },
  },
} as JSONSchemaType<DeployBody>);

/** The JSON parser for POST /v1/deploy, mounted before the ordinary one (which then skips the parsed request). */
export function deployBodyParser(valueBodyLimit: number): RequestHandler {
  return express.json({ limit: valueBodyLimit * DEPLOY_VALUES_PER_BODY, strict: true });
}

export function deployRoutes(stacks: StackStore): Router {
  const router = Router();
  router.post('/deploy', async (req, res) => {
    const body = deployBody(req.body);
    const secrets: DeploySecret[] = body.secrets.map((s) => ({
      key: s.key,
      name: s.name,
      external: s.external,
      labels: s.labels,
      data: s.data === undefined ? undefined : decodeBase64(`secrets.${s.key}.data`, s.data),
    }));
    const services = body.services.map((s) => acl.validateServiceSpec(s));
    res.json(await stacks.deploy({ project: body.project, secrets, services, prune: body.prune ?? false, dryRun: body.dryRun ?? false }, actorOf(req)));
  });
  router.get('/stacks', async (_req, res) => {
    res.json(await stacks.list());
  });
  router.delete('/stacks/:name', async (req, res) => {
    res.json({ project: req.params.name, actions: await stacks.remove(req.params.name) });
  });
  return router;
}

interface ServiceUpdateBody {
  secretAdd?: object[];
  secretRm?: string[];
  constraintAdd?: string[];
  constraintRm?: string[];
}

const serviceUpdateBody = validator<ServiceUpdateBody>('update service', {
  type: 'object',
  additionalProperties: false,
  properties: {
    secretAdd: { type: 'array', nullable: true, maxItems: MAX_OBJECTS, items: { type: 'object', required: [] } },
    secretRm: { type: 'array', nullable: true, maxItems: MAX_OBJECTS, items: { type: 'string' } },
    constraintAdd: { type: 'array', nullable: true, maxItems: MAX_OBJECTS, items: { type: 'string' } },
    constraintRm: { type: 'array', nullable: true, maxItems: MAX_OBJECTS, items: { type: 'string' } },
  },
} as JSONSchemaType<ServiceUpdateBody>);

/**
 * POST /v1/services/:name/update, as `docker service update`: removals first
 * (--secret-rm takes a secret name and drops every grant of it), then
 * additions; the result is validated as a whole service (targets unique,
 * constraints parsed) and stored in one transaction. Removing something the
 * service does not have is an error (a typo should not pass as done).
 */
export function serviceUpdateHandler(services: ServiceStore): RequestHandler {
  return async (req, res) => {
    const body = serviceUpdateBody(req.body);
    const name = String(req.params.name);
    const added = acl.validateGrants(body.secretAdd ?? []);
    const addConstraints = (body.constraintAdd ?? []).map((e) => acl.parseConstraint(e).text);
    const rmConstraints = (body.constraintRm ?? []).map((e) => acl.parseConstraint(e).text);
    const record = await services.update(name, (current) => {
      for (const source of body.secretRm ?? []) {
        if (!current.grants.some((g) => g.source === source)) throw new HushError('bad_request', `service "${name}" is not granted secret "${source}"; nothing to remove`);
      }
      for (const text of rmConstraints) {
        if (!current.constraints.includes(text)) throw new HushError('bad_request', `service "${name}" has no constraint ${text}; nothing to remove`);
      }
      const rmSecrets = new Set(body.secretRm ?? []);
      const grants = [...current.grants.filter((g) => !rmSecrets.has(g.source)), ...added];
      const constraints = current.constraints.filter((c) => !rmConstraints.includes(c));
      for (const text of addConstraints) if (!constraints.includes(text)) constraints.push(text);
      return acl.validateServiceSpec({ name: current.name, grants, constraints });
    });
    res.json(record);
  };
}
