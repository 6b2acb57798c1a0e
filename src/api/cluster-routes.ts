/** Native admin routes for services, nodes and join tokens (admin certificates: cert-routes.ts). */
import type { Propagation, ReadRecord } from '../rotation/index.js';
import { Router } from 'express';
import type { JSONSchemaType } from 'ajv';
import * as acl from '../acl/index.js';
import { HushError } from '../errors/index.js';
import { validator } from '../http/index.js';
import { assertValidLabels, assertValidName } from '../rules/index.js';
import type { NodeRecord, NodeStore, ServiceStore } from '../store/index.js';
import type { CaRotationReport, CaStatus } from './ca-routes.js';
import { serviceUpdateHandler } from './deploy-routes.js';

export interface NodeStatus {
  state: 'ready' | 'down';
  lastHeartbeat?: string;
  ackedRevision?: number;
  /** The store replica the node's session is open on (replicas sharing etcd). */
  replica?: string;
}

/** The cluster side of the store (PKI, sessions): present once the store is unlocked. */
export interface ClusterControl {
  /** The current cluster-wide token (re-read: another replica may have rotated it). */
  joinToken(): Promise<string>;
  rotateJoinToken(): Promise<string>;
  /** The token bound to one node name, made on first request. */
  nodeJoinToken(name: string, options?: { rotate?: boolean }): Promise<string>;
  hasNodeJoinToken(name: string): Promise<boolean>;
  nodeStatus(nodeId: string): NodeStatus;
  /** The cluster CA and, during a rotation, each node's progress onto the new one. */
  caStatus(): Promise<CaStatus>;
  /** Starts a CA rotation (409 while one runs). */
  rotateCa(): Promise<CaRotationReport>;
  /** How far each of `versions` of `secret` has reached its entitled nodes (the dispatcher's acks), in the order asked. */
  propagation(secret: string, versions: number[]): Promise<Propagation[]>;
  /** Who read which version (of one secret, if given), as the nodes reported it (rotation/reads.ts). */
  reads(query: { secret?: string }): Promise<ReadRecord[]>;
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
  router.post('/:name/update', serviceUpdateHandler(services));
  router.delete('/:name', async (req, res) => {
    await services.remove(req.params.name);
    res.status(204).end();
  });
  return router;
}

export function nodeRoutes(nodes: NodeStore, cluster: () => ClusterControl): Router {
  const router = Router();
  // `labels`: the admin labels of the node's name (node.labels); `engineLabels`: what the node reported (engine.labels).
  const view = (node: NodeRecord, labels: Record<string, string>) => {
    const { id, name, hostname, engineLabels, ...rest } = node;
    return { id, name, hostname, labels, engineLabels, ...rest, status: cluster().nodeStatus(node.id) };
  };
  router.get('/', async (_req, res) => {
    const labels = await nodes.allAdminLabels();
    res.json((await nodes.list()).map((n) => view(n, labels.get(n.name) ?? {})));
  });
  router.get('/:name', async (req, res) => {
    const node = await nodes.get(req.params.name);
    res.json(view(node, await nodes.adminLabels(node.name)));
  });
  // Admin labels belong to the node name: they apply to whichever node holds it, now and after it rejoins.
  router.post('/:name/labels', async (req, res) => {
    const body = labelBody(req.body);
    assertValidLabels(body.add ?? {});
    const name = await labelledName(nodes, cluster(), req.params.name);
    res.json({ name, labels: await nodes.changeAdminLabels(name, body) });
  });
  router.delete('/:name', async (req, res) => {
    await nodes.revoke(req.params.name);
    res.status(204).end();
  });
  return router;
}

/**
 * The node name that `idOrName` labels: a node's id stands for its name; a
 * name counts if a node holds it or it already has labels or its own token
 * (so a name can be labelled before its node first joins, and a typo is a 404).
 */
async function labelledName(nodes: NodeStore, cluster: ClusterControl, idOrName: string): Promise<string> {
  const byId = (await nodes.list()).find((n) => n.id === idOrName);
  if (byId) return byId.name;
  assertValidName(idOrName, 'node');
  const known =
    (await nodes.withName(idOrName)).length > 0 || Object.keys(await nodes.adminLabels(idOrName)).length > 0 || (await cluster.hasNodeJoinToken(idOrName));
  if (!known) {
    throw new HushError('not_found', `no node "${idOrName}"; \`hush node ls\` lists them (to label a name before its node joins, make its token first: \`hush join-token --node ${idOrName}\`)`);
  }
  return idOrName;
}

interface TokenBody {
  node?: string;
}

const tokenBody = validator<TokenBody>('join token', {
  type: 'object',
  additionalProperties: false,
  properties: { node: { type: 'string', nullable: true } },
} as JSONSchemaType<TokenBody>);

export function joinTokenRoutes(cluster: () => ClusterControl): Router {
  const router = Router();
  router.get('/', async (_req, res) => {
    res.json({ token: await cluster().joinToken() });
  });
  // {node}: the token bound to that node name (made on first request); {}: the cluster-wide token.
  // A missing body counts as {}, as it did before node-bound tokens.
  router.post('/', async (req, res) => {
    const { node } = tokenBody(req.body ?? {});
    res.json(node === undefined ? { token: await cluster().joinToken() } : { node, token: await cluster().nodeJoinToken(node) });
  });
  router.post('/rotate', async (req, res) => {
    const { node } = tokenBody(req.body ?? {});
    res.json(node === undefined ? { token: await cluster().rotateJoinToken() } : { node, token: await cluster().nodeJoinToken(node, { rotate: true }) });
  });
  return router;
}
