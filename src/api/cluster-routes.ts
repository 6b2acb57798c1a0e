/** Native admin routes for services, nodes and join tokens. */
import { Router } from 'express';
import type { JSONSchemaType } from 'ajv';
import * as acl from '../acl/index.js';
import { HushError } from '../errors/index.js';
import type { NodeRecord, NodeStore, ServiceStore } from '../store/index.js';
import { validator } from './validate.js';

export interface NodeStatus {
  state: 'ready' | 'down';
  lastHeartbeat?: string;
  ackedRevision?: number;
}

/** The cluster side of the store (PKI, sessions): present once the store is unlocked. */
export interface ClusterControl {
  issueAdminCert(commonName: string, role: 'admin' | 'operator' | 'auditor'): { certPem: string; keyPem: string; caPem: string };
  joinToken(): string;
  rotateJoinToken(): Promise<string>;
  nodeStatus(nodeId: string): NodeStatus;
}

interface LabelBody {
  add?: Record<string, string>;
  remove?: string[];
}

const labelBody = validator<LabelBody>('node labels', {
  type: 'object',
  additionalProperties: false,
  properties: {
    add: { type: 'object', nullable: true, required: [], additionalProperties: { type: 'string' } },
    remove: { type: 'array', nullable: true, items: { type: 'string' } },
  },
} as JSONSchemaType<LabelBody>);

export function serviceRoutes(services: ServiceStore): Router {
  const router = Router();
  router.post('/', async (req, res) => {
    const spec = acl.validateServiceSpec(req.body);
    res.status(201).json(await services.put(spec));
  });
  router.get('/', async (_req, res) => {
    res.json(await services.list());
  });
  router.get('/:name', async (req, res) => {
    res.json(await services.get(req.params.name));
  });
  router.delete('/:name', async (req, res) => {
    await services.remove(req.params.name);
    res.status(204).end();
  });
  return router;
}

export function nodeRoutes(nodes: NodeStore, cluster: () => ClusterControl): Router {
  const router = Router();
  const withStatus = (node: NodeRecord) => ({ ...node, status: cluster().nodeStatus(node.id) });
  router.get('/', async (_req, res) => {
    res.json((await nodes.list()).map(withStatus));
  });
  router.get('/:name', async (req, res) => {
    res.json(withStatus(await nodes.get(req.params.name)));
  });
  router.post('/:name/labels', async (req, res) => {
    const body = labelBody(req.body);
    for (const key of Object.keys(body.add ?? {})) if (!key) throw new HushError('bad_request', 'label keys must not be empty');
    const node = await nodes.get(req.params.name);
    const updated = await nodes.update(node.id, (n) => {
      const labels = { ...n.labels, ...body.add };
      for (const key of body.remove ?? []) delete labels[key];
      return { ...n, labels };
    });
    res.json(withStatus(updated));
  });
  router.delete('/:name', async (req, res) => {
    await nodes.revoke(req.params.name);
    res.status(204).end();
  });
  return router;
}

export function joinTokenRoutes(cluster: () => ClusterControl): Router {
  const router = Router();
  router.get('/', (_req, res) => {
    res.json({ token: cluster().joinToken() });
  });
  router.post('/rotate', async (_req, res) => {
    res.json({ token: await cluster().rotateJoinToken() });
  });
  return router;
}

interface CertBody {
  commonName: string;
  role: 'admin' | 'operator' | 'auditor';
}

const certBody = validator<CertBody>('issue certificate', {
  type: 'object',
  additionalProperties: false,
  required: ['commonName', 'role'],
  properties: {
    commonName: { type: 'string', minLength: 1, maxLength: 64 },
    role: { type: 'string', enum: ['admin', 'operator', 'auditor'] },
  },
} as JSONSchemaType<CertBody>);

/** Admin client certificates for people and tools (the docker CLI uses them as DOCKER_CERT_PATH). */
export function certRoutes(cluster: () => ClusterControl): Router {
  const router = Router();
  router.post('/', (req, res) => {
    const body = certBody(req.body);
    res.status(201).json(cluster().issueAdminCert(body.commonName, body.role));
  });
  return router;
}
