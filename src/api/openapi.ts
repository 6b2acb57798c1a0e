/**
 * The OpenAPI 3.0 document of the admin API, served at GET /v1/openapi.json.
 *
 * One list of operations below is the single place routes are described.
 * Request bodies are the JSON Schemas the validators check requests with
 * (looked up by the validator's name, see validate.ts), and each operation's
 * role is read from the route table in src/acl, so neither can drift.
 * test/unit/openapi.test.ts lists the routes the express app really serves
 * and fails until each one is here and each one here is served: a new route
 * means one more entry in OPERATIONS.
 */
import * as acl from '../acl/index.js';
import { DOCKER_API_VERSION } from './docker-routes.js';
import { requestBodySchema } from '../http/index.js';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

interface Response {
  description: string;
  /** A component schema name, or an inline schema. */
  schema?: string | object;
  /** Content type of a non-JSON body. */
  type?: string;
}

interface Operation {
  method: Method;
  /** OpenAPI path template: `{name}` for a path parameter. */
  path: string;
  tag: 'secrets' | 'services' | 'nodes' | 'cluster' | 'deploy' | 'audit' | 'system' | 'docker';
  summary: string;
  /** The name of the request validator (validate.ts) whose schema is the body, or an inline schema. */
  body?: string | object;
  query?: { name: string; description: string; required?: boolean; schema: object }[];
  responses: Record<number, Response>;
}

const ok = (schema?: string | object, description = 'OK'): Response => ({ description, schema });
const NO_CONTENT: Response = { description: 'Done; no body' };

/**
 * Every route of the admin app. Other parts add theirs here (deploy, service
 * update, audit, ...) next to their kind.
 */
const ISSUED_CERT = { type: 'object', properties: { name: { type: 'string' }, role: { type: 'string' }, serial: { type: 'string' }, notAfter: { type: 'string' }, certPem: { type: 'string' }, keyPem: { type: 'string' }, caPem: { type: 'string' } } };

const OPERATIONS: Operation[] = [
  // System
  { method: 'get', path: '/healthz', tag: 'system', summary: 'Liveness and lock state', responses: { 200: ok('Health') } },
  { method: 'get', path: '/metrics', tag: 'system', summary: 'Prometheus metrics (text exposition format); never a value, no per-secret labels', responses: { 200: { description: 'Metrics', type: 'text/plain', schema: { type: 'string' } } } },
  { method: 'get', path: '/v1/openapi.json', tag: 'system', summary: 'This document', responses: { 200: ok({ type: 'object' }) } },
  { method: 'post', path: '/v1/unlock', tag: 'system', summary: 'Unlock an autolocked store', body: 'unlock', responses: { 200: ok({ type: 'object', properties: { status: { type: 'string' } } }) } },
  { method: 'post', path: '/v1/key/rotate', tag: 'system', summary: 'Re-wrap every data key under a new key-encryption key', responses: { 200: ok({ type: 'object', properties: { term: { type: 'integer' }, secrets: { type: 'integer' } } }) } },

  // Secrets
  { method: 'post', path: '/v1/secrets', tag: 'secrets', summary: 'Create a secret', body: 'create secret', responses: { 201: ok('SecretCreated', 'Created'), 409: ok('Error', 'A secret with this name exists'), 413: ok('Error', 'Value over the limit') } },
  { method: 'get', path: '/v1/secrets', tag: 'secrets', summary: 'List secrets (never values)', responses: { 200: ok({ type: 'array', items: { $ref: '#/components/schemas/SecretSummary' } }) } },
  { method: 'get', path: '/v1/secrets/{name}', tag: 'secrets', summary: 'Inspect a secret by name or id (never its value)', responses: { 200: ok('SecretDetail'), 404: ok('Error', 'No such secret') } },
  { method: 'delete', path: '/v1/secrets/{name}', tag: 'secrets', summary: 'Remove a secret', responses: { 204: NO_CONTENT, 404: ok('Error', 'No such secret'), 409: ok('Error', 'A service uses it') } },
  { method: 'post', path: '/v1/secrets/{name}/rotate', tag: 'secrets', summary: 'Add a version (given data, or generated random bytes in a charset); `keep` sets how many versions it keeps', body: 'rotate secret', responses: { 201: ok({ type: 'object', properties: { name: { type: 'string' }, version: { type: 'integer' } } }, 'Created') } },
  { method: 'get', path: '/v1/secrets/{name}/versions', tag: 'secrets', summary: 'The kept versions: time, who made it and how, propagation', responses: { 200: ok({ type: 'array', items: { type: 'object' } }), 404: ok('Error', 'No such secret') } },
  {
    method: 'get',
    path: '/v1/secrets/{name}/propagation',
    tag: 'secrets',
    summary: 'Which entitled nodes acknowledged holding a version (or newer), and when',
    query: [{ name: 'version', description: 'The version (default: the current one)', schema: { type: 'integer', minimum: 1 } }],
    responses: { 200: ok('Propagation'), 404: ok('Error', 'No such secret or version'), 503: ok('Error', 'The cluster side is starting') },
  },
  { method: 'post', path: '/v1/secrets/{name}/rollback', tag: 'secrets', summary: 'A new version holding the value of a kept older version (history only moves forward)', body: 'rollback secret', responses: { 201: ok({ type: 'object', properties: { name: { type: 'string' }, version: { type: 'integer' }, from: { type: 'integer' } } }, 'Created'), 404: ok('Error', 'No such secret, or the version is no longer kept') } },
  { method: 'put', path: '/v1/secrets/{name}/schedule', tag: 'secrets', summary: 'Set a rotation schedule: a generated value every period, first one period from now', body: 'rotation schedule', responses: { 200: ok('SecretDetail') } },
  { method: 'delete', path: '/v1/secrets/{name}/schedule', tag: 'secrets', summary: 'Remove the rotation schedule', responses: { 200: ok('SecretDetail') } },

  // Audit log
  {
    method: 'get',
    path: '/v1/audit',
    tag: 'audit',
    summary: 'Audit records (chained, keyed; never a value), oldest first',
    query: [
      { name: 'since', description: 'Records at or after this time (ISO 8601)', schema: { type: 'string' } },
      { name: 'actor', description: 'Records whose actor contains this text', schema: { type: 'string' } },
      { name: 'limit', description: 'Only the newest N matches', schema: { type: 'integer', minimum: 1 } },
    ],
    responses: { 200: ok({ type: 'array', items: { $ref: '#/components/schemas/AuditRecord' } }) },
  },
  {
    method: 'get',
    path: '/v1/audit/reads',
    tag: 'audit',
    summary: 'Who read what: per node, container and secret version, the first read and whether the container still holds it (names, versions and times; never a value)',
    query: [{ name: 'secret', description: 'Only reads of this secret', schema: { type: 'string' } }],
    responses: { 200: ok({ type: 'array', items: { $ref: '#/components/schemas/ReadRecord' } }), 503: ok('Error', 'The cluster side is starting') },
  },
  { method: 'get', path: '/v1/audit/verify', tag: 'audit', summary: 'Check the chain: every edited, removed, reordered or cut-off record, and where', responses: { 200: ok({ type: 'object', properties: { ok: { type: 'boolean' }, records: { type: 'integer' }, problems: { type: 'array', items: { type: 'object' } } } }) } },

  // Services
  { method: 'post', path: '/v1/services', tag: 'services', summary: 'Create a service', body: 'ServiceSpec', responses: { 201: ok('Service', 'Created'), 404: ok('Error', 'A granted secret does not exist'), 409: ok('Error', 'A service with this name exists') } },
  { method: 'get', path: '/v1/services', tag: 'services', summary: 'List services', responses: { 200: ok({ type: 'array', items: { $ref: '#/components/schemas/Service' } }) } },
  { method: 'get', path: '/v1/services/{name}', tag: 'services', summary: 'Inspect a service', responses: { 200: ok('Service'), 404: ok('Error', 'No such service') } },
  { method: 'delete', path: '/v1/services/{name}', tag: 'services', summary: 'Remove a service', responses: { 204: NO_CONTENT, 404: ok('Error', 'No such service') } },

  // Nodes and cluster membership
  { method: 'get', path: '/v1/nodes', tag: 'nodes', summary: 'List nodes', responses: { 200: ok({ type: 'array', items: { $ref: '#/components/schemas/Node' } }) } },
  { method: 'get', path: '/v1/nodes/{name}', tag: 'nodes', summary: 'Inspect a node by id or name', responses: { 200: ok('Node'), 404: ok('Error', 'No such node') } },
  { method: 'post', path: '/v1/nodes/{name}/labels', tag: 'nodes', summary: 'Add or remove the admin labels of a node name', body: 'node labels', responses: { 200: ok({ type: 'object', properties: { name: { type: 'string' }, labels: { $ref: '#/components/schemas/Labels' } } }) } },
  { method: 'delete', path: '/v1/nodes/{name}', tag: 'nodes', summary: 'Remove and revoke a node', responses: { 204: NO_CONTENT } },
  { method: 'get', path: '/v1/join-token', tag: 'cluster', summary: 'The cluster-wide join token', responses: { 200: ok('JoinToken') } },
  { method: 'post', path: '/v1/join-token', tag: 'cluster', summary: 'The join token bound to a node name (or the cluster-wide one)', body: 'join token', responses: { 200: ok('JoinToken') } },
  { method: 'post', path: '/v1/join-token/rotate', tag: 'cluster', summary: 'Replace a join token', body: 'join token', responses: { 200: ok('JoinToken') } },
  { method: 'get', path: '/v1/ca', tag: 'cluster', summary: 'The cluster CA fingerprint and, during a CA rotation, each node\'s progress onto the new CA', responses: { 200: ok('CaStatus') } },
  { method: 'post', path: '/v1/ca/rotate', tag: 'cluster', summary: 'Start a CA rotation: a new CA cross-signed by the current one; the old one is retired once every node holds a new certificate', responses: { 201: ok({ type: 'object' }, 'Started'), 409: ok('Error', 'A CA rotation is already running') } },
  { method: 'get', path: '/v1/certs', tag: 'cluster', summary: 'List the admin client certificates issued (name, role, serial, status, expiry)', responses: { 200: ok({ type: 'array', items: { type: 'object' } }) } },
  { method: 'post', path: '/v1/certs', tag: 'cluster', summary: 'Issue an admin client certificate with a role', body: 'issue certificate', responses: { 201: ok(ISSUED_CERT, 'Created'), 409: ok('Error', 'The name has an active certificate') } },
  { method: 'post', path: '/v1/certs/{name}/renew', tag: 'cluster', summary: 'Issue a new certificate for the name; the old serial is superseded', body: 'renew certificate', responses: { 201: ok(ISSUED_CERT, 'Created'), 404: ok('Error', 'No certificate of that name') } },
  { method: 'post', path: '/v1/certs/{name}/revoke', tag: 'cluster', summary: 'Revoke a certificate by name or serial, at once (open connections closed)', responses: { 200: ok({ type: 'object' }), 404: ok('Error', 'Unknown name or serial'), 409: ok('Error', 'Revoked already') } },

  // Compose deploys
  { method: 'post', path: '/v1/deploy', tag: 'deploy', summary: 'Apply a deploy plan resolved from compose files, in one transaction', body: 'deploy', responses: { 200: ok({ type: 'object' }), 404: ok('Error', 'An external secret does not exist'), 409: ok('Error', 'A name is taken by an object outside the project, or a pruned secret is in use') } },
  { method: 'get', path: '/v1/stacks', tag: 'deploy', summary: 'List compose projects with their counts of secrets and services', responses: { 200: ok({ type: 'array', items: { type: 'object' } }) } },
  { method: 'delete', path: '/v1/stacks/{name}', tag: 'deploy', summary: "Remove every secret and service labelled with the project, in one transaction", responses: { 200: ok({ type: 'object' }), 404: ok('Error', 'Nothing carries the label'), 409: ok('Error', 'A service outside the stack uses one of its secrets') } },
  { method: 'post', path: '/v1/services/{name}/update', tag: 'services', summary: 'Add or remove grants and constraints of a service, in one transaction', body: 'update service', responses: { 200: ok('Service'), 404: ok('Error', 'No such service') } },

  // Docker Engine API subset (also under /v1.NN, see DOCKER_SERVERS)
  { method: 'get', path: '/_ping', tag: 'docker', summary: 'Docker ping; headers API-Version, OSType, Swarm, Docker-Experimental (HEAD too)', responses: { 200: { description: 'OK', type: 'text/plain', schema: { type: 'string' } } } },
  { method: 'get', path: '/version', tag: 'docker', summary: 'Docker version', responses: { 200: ok({ type: 'object' }) } },
  { method: 'get', path: '/info', tag: 'docker', summary: 'Docker system info: a Swarm manager', responses: { 200: ok({ type: 'object' }) } },
  { method: 'post', path: '/secrets/create', tag: 'docker', summary: 'Create a secret (Docker SecretSpec)', body: 'docker secret create', responses: { 201: ok({ type: 'object', properties: { ID: { type: 'string' } } }, 'Created'), 409: ok('DockerError', 'Name in use') } },
  {
    method: 'get',
    path: '/secrets',
    tag: 'docker',
    summary: 'List secrets (Docker Secret objects)',
    query: [{ name: 'filters', description: 'JSON map of id (prefix), name (prefix), names (exact), label (key or key=value) to values', schema: { type: 'string' } }],
    responses: { 200: ok({ type: 'array', items: { $ref: '#/components/schemas/DockerSecret' } }) },
  },
  { method: 'get', path: '/secrets/{id}', tag: 'docker', summary: 'Inspect a secret by id, name or id prefix', responses: { 200: ok('DockerSecret'), 404: ok('DockerError', 'No such secret') } },
  { method: 'delete', path: '/secrets/{id}', tag: 'docker', summary: 'Remove a secret', responses: { 204: NO_CONTENT, 400: ok('DockerError', 'A service uses it (400, as Docker)'), 404: ok('DockerError', 'No such secret') } },
  {
    method: 'post',
    path: '/secrets/{id}/update',
    tag: 'docker',
    summary: 'Replace the labels of a secret (name and value are immutable)',
    body: 'docker secret update',
    query: [{ name: 'version', description: 'Version.Index of the secret as inspected', required: true, schema: { type: 'integer', minimum: 0 } }],
    responses: { 200: NO_CONTENT, 400: ok('DockerError', 'Not a label change, or no version'), 409: ok('DockerError', 'The secret changed since that version') },
  },
];

/** The Docker routes answer at the root and under any /v1.NN prefix. */
const DOCKER_SERVERS = [
  { url: '/' },
  { url: '/v1.{minor}', description: 'Docker API version prefix; any minor version is accepted', variables: { minor: { default: DOCKER_API_VERSION.split('.')[1]! } } },
];

const labels = { type: 'object', additionalProperties: { type: 'string' } };
const timestamp = { type: 'string', format: 'date-time' };

const SCHEMAS: Record<string, object> = {
  Error: {
    type: 'object',
    required: ['error'],
    properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
  },
  DockerError: { type: 'object', required: ['message'], properties: { message: { type: 'string' } } },
  Labels: labels,
  Health: {
    type: 'object',
    properties: { status: { type: 'string', enum: ['ok', 'locked'] }, revision: { type: 'integer' }, cluster: { type: 'string', enum: ['ready', 'starting'] } },
  },
  SecretCreated: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, version: { type: 'integer' } } },
  SecretSummary: {
    type: 'object',
    properties: { id: { type: 'string' }, name: { type: 'string' }, version: { type: 'integer' }, labels, createdAt: timestamp, updatedAt: timestamp },
  },
  SecretDetail: {
    allOf: [
      { $ref: '#/components/schemas/SecretSummary' },
      {
        type: 'object',
        properties: {
          versions: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                version: { type: 'integer' },
                createdAt: timestamp,
                actor: { type: 'string', description: 'who made it: local-root, cert:NAME (ROLE), scheduler' },
                origin: { type: 'string', enum: ['create', 'rotate', 'rollback', 'schedule', 'deploy'] },
                from: { type: 'integer', description: 'a rollback: the version whose value it took' },
                propagation: { $ref: '#/components/schemas/Propagation' },
                readers: { type: 'array', description: 'containers that read this version (ReadRecord without secret and version)', items: { type: 'object' } },
              },
            },
          },
          olderVersionHolders: { type: 'array', description: 'containers whose mount still holds a version older than the current one', items: { $ref: '#/components/schemas/ReadRecord' } },
          keep: { type: 'integer', description: 'versions kept; older ones are destroyed' },
          schedule: {
            type: 'object',
            properties: { every: { type: 'string' }, everyMs: { type: 'integer' }, generate: { type: 'integer' }, charset: { type: 'string', enum: ['raw', 'base64', 'hex', 'alnum'] }, nextDue: timestamp },
          },
        },
      },
    ],
  },
  Propagation: {
    type: 'object',
    properties: {
      version: { type: 'integer' },
      complete: { type: 'boolean', description: 'every entitled node acknowledged this version or a newer one (true when no node is entitled)' },
      nodes: {
        type: 'array',
        items: { type: 'object', properties: { node: { type: 'string', description: 'node id' }, name: { type: 'string' }, version: { type: 'integer', description: 'the version it holds' }, ackedAt: timestamp } },
      },
    },
  },
  ReadRecord: {
    type: 'object',
    properties: {
      node: { type: 'string', description: 'node id' },
      nodeName: { type: 'string' },
      container: { type: 'string', description: 'the container id the node registered (hush run, runtime API, Docker plugin mount)' },
      runtime: { type: 'object', description: "the container's Docker id and name, once its node identified it", properties: { runtime: { type: 'string', enum: ['docker'] }, id: { type: 'string' }, name: { type: 'string' } } },
      service: { type: 'string' },
      secret: { type: 'string' },
      version: { type: 'integer' },
      firstReadAt: { ...timestamp, description: 'the first lookup of this version in the container\'s mount' },
      state: { type: 'string', enum: ['held', 'released'], description: 'held: the container\'s mount still holds the version (an open file, a name the kernel caches)' },
      releasedAt: { ...timestamp, nullable: true, description: 'when the kernel released the version, or the container\'s mount went' },
      reportedAt: timestamp,
    },
  },
  AuditRecord: {
    type: 'object',
    properties: {
      seq: { type: 'integer' },
      time: timestamp,
      actor: { type: 'string' },
      action: { type: 'string' },
      object: { type: 'string' },
      result: { type: 'string', description: 'ok, or the error code of a refusal' },
      detail: { type: 'string' },
      tag: { type: 'string', description: 'hex keyed BLAKE2b-256 chaining the record to the one before' },
    },
  },
  Grant: {
    type: 'object',
    required: ['source'],
    additionalProperties: false,
    properties: {
      source: { type: 'string', description: 'secret name' },
      target: { type: 'string', description: 'file name under /run/secrets (default: the source)' },
      uid: { type: 'integer', minimum: 0 },
      gid: { type: 'integer', minimum: 0 },
      mode: { type: 'integer', minimum: 0, maximum: 0o777, description: 'default 0444' },
      template: { type: 'boolean', description: 'render the source as a template: {{ secret "NAME" }} pastes secret NAME, which must be granted to the same service' },
    },
  },
  // Checked by acl.validateServiceSpec (hand-written: its errors name the grant and the rule).
  ServiceSpec: {
    type: 'object',
    required: ['name'],
    additionalProperties: false,
    properties: {
      name: { type: 'string' },
      grants: { type: 'array', items: { $ref: '#/components/schemas/Grant' } },
      constraints: { type: 'array', items: { type: 'string', description: 'node.labels.K==V, engine.labels.K==V, node.hostname==H, node.id==ID, node.role==R; also !=' } },
    },
  },
  Service: {
    allOf: [{ $ref: '#/components/schemas/ServiceSpec' }, { type: 'object', properties: { createdAt: timestamp, updatedAt: timestamp } }],
  },
  Node: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      hostname: { type: 'string' },
      labels,
      engineLabels: labels,
      role: { type: 'string' },
      containers: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            id: { type: 'string', description: 'as registered with the agent (for Docker: the plugin mount ID)' },
            service: { type: 'string' },
            runtime: { type: 'object', description: "who it is to its runtime once the agent knows: Docker's container id and name", properties: { runtime: { type: 'string', enum: ['docker'] }, id: { type: 'string' }, name: { type: 'string' } } },
          },
        },
      },
      status: { type: 'object', properties: { state: { type: 'string', enum: ['ready', 'down'] }, lastHeartbeat: timestamp, ackedRevision: { type: 'integer' }, replica: { type: 'string' } } },
    },
  },
  JoinToken: { type: 'object', required: ['token'], properties: { node: { type: 'string' }, token: { type: 'string' } } },
  CaStatus: {
    type: 'object',
    required: ['fingerprint'],
    properties: {
      fingerprint: { type: 'string', description: 'SHA-256 of the active CA certificate (what new join tokens carry)' },
      rotation: { type: 'object', description: 'Present while the previous CA is still trusted', properties: { previousFingerprint: { type: 'string' }, startedAt: { type: 'string' }, moved: { type: 'integer' }, total: { type: 'integer' }, complete: { type: 'boolean' }, nodes: { type: 'array', items: { type: 'object' } } } },
    },
  },
  DockerSecret: {
    type: 'object',
    description: 'Docker Engine API Secret object; never carries Data',
    properties: {
      ID: { type: 'string' },
      Version: { type: 'object', properties: { Index: { type: 'integer', description: 'changes with every change to the secret; pass it to update' } } },
      CreatedAt: timestamp,
      UpdatedAt: timestamp,
      Spec: { type: 'object', properties: { Name: { type: 'string' }, Labels: labels } },
    },
  },
};

/** The least role that may call a route, from the route table. */
function roleFor(method: Method, path: string): string {
  const sample = path.replace(/\{[^}]+\}/g, 'x');
  const action = acl.actionForRequest(method.toUpperCase(), sample);
  if (action === undefined) return 'any';
  return acl.ROLES.slice().reverse().find((role) => acl.can(role, action)) ?? 'admin';
}

const schemaRef = (schema: string | object): object => (typeof schema === 'string' ? { $ref: `#/components/schemas/${schema}` } : schema);

/**
 * ajv's JSON Schema dialect to OpenAPI 3.0's: OpenAPI 3.0 has no `type:
 * "null"` (a field that may only be null or absent) and no empty `required`.
 */
function toOpenApiSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toOpenApiSchema);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'required' && Array.isArray(value) && value.length === 0) continue;
    out[key] = key === 'properties' ? Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, toOpenApiSchema(v)])) : toOpenApiSchema(value);
  }
  if (out.type === 'null') {
    delete out.type;
    return { ...out, nullable: true, enum: [null], description: 'not supported: must be null or absent' };
  }
  return out;
}

function bodySchema(body: string | object): object {
  if (typeof body !== 'string') return body;
  if (SCHEMAS[body]) return schemaRef(body);
  const schema = requestBodySchema(body);
  if (!schema) throw new Error(`openapi: no request validator or schema named "${body}"`);
  return toOpenApiSchema(schema) as object;
}

function operationObject(op: Operation): object {
  const role = roleFor(op.method, op.path);
  const params = [...op.path.matchAll(/\{([^}]+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
  const query = (op.query ?? []).map((q) => ({ name: q.name, in: 'query', required: q.required ?? false, description: q.description, schema: q.schema }));
  const responses: Record<string, object> = {};
  for (const [status, response] of Object.entries(op.responses)) {
    responses[status] = {
      description: response.description,
      ...(response.schema ? { content: { [response.type ?? 'application/json']: { schema: schemaRef(response.schema) } } } : {}),
    };
  }
  const errorSchema = op.tag === 'docker' ? 'DockerError' : 'Error';
  if (role !== 'any') responses['403'] ??= { description: 'The client certificate\'s role may not do this', content: { 'application/json': { schema: schemaRef(errorSchema) } } };
  responses.default ??= { description: 'Error', content: { 'application/json': { schema: schemaRef(errorSchema) } } };
  return {
    operationId: `${op.method}${op.path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
    tags: [op.tag],
    summary: op.summary,
    description: `Least role: ${role}.`,
    'x-hush-role': role,
    ...(params.length + query.length > 0 ? { parameters: [...params, ...query] } : {}),
    ...(op.body ? { requestBody: { required: true, content: { 'application/json': { schema: bodySchema(op.body) } } } } : {}),
    responses,
  };
}

/**
 * The operations as (method, path) pairs with what each request may carry:
 * a JSON body or none, and which query parameters. The admin app refuses
 * anything else (request-shape.ts); tests and docs checks read it too.
 */
export function documentedOperations(): { method: string; path: string; docker: boolean; body: boolean; query: string[] }[] {
  return OPERATIONS.map((op) => ({
    method: op.method.toUpperCase(),
    path: op.path,
    docker: op.tag === 'docker',
    body: op.body !== undefined,
    query: (op.query ?? []).map((q) => q.name),
  }));
}

let cached: object | undefined;

export function openApiDocument(): object {
  if (cached) return cached;
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    const item = (paths[op.path] ??= op.tag === 'docker' ? { servers: DOCKER_SERVERS } : {});
    if (item[op.method]) throw new Error(`openapi: ${op.method.toUpperCase()} ${op.path} is listed twice`);
    item[op.method] = operationObject(op);
  }
  cached = {
    openapi: '3.0.3',
    info: {
      title: 'hush admin API',
      version: '1',
      description:
        'The admin API of the hush store, on the root-only unix socket (caller is admin) and on HTTPS with a client certificate from the cluster CA (role = that of the certificate\'s record in the store, which must match its OU). ' +
        'Errors are {"error": {"code", "message"}}; on the Docker-compatible routes, Docker\'s {"message"}. Responses never carry a secret value.',
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'secrets' },
      { name: 'services' },
      { name: 'nodes' },
      { name: 'cluster' },
      { name: 'deploy', description: 'Compose projects (hush deploy, hush stack)' },
      { name: 'system' },
      { name: 'docker', description: 'Docker Engine API subset for the stock docker CLI (docker secret ...), also under /v1.NN' },
    ],
    paths,
    components: { schemas: SCHEMAS },
  };
  return cached;
}
