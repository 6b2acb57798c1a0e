/**
 * Admin client certificates for people and tools (the hush CLI over HTTPS,
 * the docker CLI as DOCKER_CERT_PATH): issue, list, renew, revoke. Every
 * route here is admin-only (src/acl/routes.ts): whoever issues certificates
 * chooses roles.
 */
import { Router } from 'express';
import type { JSONSchemaType } from 'ajv';
import { validator } from '../http/index.js';
import { assertAdminCertLifetime, assertValidCertName } from '../rules/index.js';
import { ROLES, type Role } from '../acl/index.js';
import type { AdminCertRecord, AdminCertStatus } from '../store/index.js';

/** A record as the API shows it: with its status worked out. */
export type AdminCertView = AdminCertRecord & { status: AdminCertStatus };

/** A new certificate and its key: the only time the key exists outside the client. */
export interface IssuedAdminCert {
  name: string;
  role: Role;
  serial: string;
  notAfter: string;
  certPem: string;
  keyPem: string;
  caPem: string;
  /** On renewal: the serial it replaced (now superseded, refused from then on). */
  replaced?: string;
}

/** Issuing needs the CA, so this exists once the store is unlocked and its cluster side is up. */
export interface AdminCertControl {
  list(): AdminCertView[];
  create(name: string, role: Role, ttlSeconds?: number): Promise<IssuedAdminCert>;
  renew(name: string, ttlSeconds?: number): Promise<IssuedAdminCert>;
  revoke(nameOrSerial: string): Promise<AdminCertView>;
}

interface CreateBody {
  name: string;
  role: Role;
  ttlSeconds?: number;
}

const createBody = validator<CreateBody>('issue certificate', {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'role'],
  properties: {
    name: { type: 'string' },
    role: { type: 'string', enum: [...ROLES] },
    ttlSeconds: { type: 'integer', nullable: true },
  },
} as JSONSchemaType<CreateBody>);

const renewBody = validator<{ ttlSeconds?: number }>('renew certificate', {
  type: 'object',
  additionalProperties: false,
  properties: { ttlSeconds: { type: 'integer', nullable: true } },
} as JSONSchemaType<{ ttlSeconds?: number }>);

export function certRoutes(certs: () => AdminCertControl): Router {
  const router = Router();
  router.get('/', (_req, res) => {
    res.json(certs().list());
  });
  router.post('/', async (req, res) => {
    const body = createBody(req.body);
    assertValidCertName(body.name);
    if (body.ttlSeconds !== undefined) assertAdminCertLifetime(body.ttlSeconds);
    res.status(201).json(await certs().create(body.name, body.role, body.ttlSeconds));
  });
  router.post('/:name/renew', async (req, res) => {
    const body = renewBody(req.body ?? {});
    if (body.ttlSeconds !== undefined) assertAdminCertLifetime(body.ttlSeconds);
    res.status(201).json(await certs().renew(req.params.name, body.ttlSeconds));
  });
  router.post('/:nameOrSerial/revoke', async (req, res) => {
    res.json(await certs().revoke(req.params.nameOrSerial));
  });
  return router;
}
