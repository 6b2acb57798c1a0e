/**
 * The runtime API's request bodies, checked with JSON Schema (ajv) the way
 * the admin API checks its own: unknown fields are refused, so a typo is an
 * error rather than a silently ignored option.
 */
import { Ajv, type ErrorObject, type JSONSchemaType } from 'ajv';
import type { WireContainer } from '../api/index.js';
import { HushError } from '../errors/index.js';

/** Container ids as Docker and OCI runtimes make them (64 hex) or as people name them; never a path. */
export const CONTAINER_ID = '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$';
/** The store's rule for object names (src/store validation). */
const SERVICE_NAME = '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$';

const FIELD_RULES: Record<string, string> = {
  id: '1 to 128 letters, digits, "_", "." or "-", starting with a letter or digit',
  service: '1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit',
};

const containerSchema: JSONSchemaType<WireContainer> = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'service'],
  properties: {
    id: { type: 'string', pattern: CONTAINER_ID },
    service: { type: 'string', pattern: SERVICE_NAME },
  },
};

const ajv = new Ajv({ allErrors: false, strict: true });
const checkContainer = ajv.compile(containerSchema);

export function validateContainerRequest(body: unknown): WireContainer {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HushError('bad_request', 'container: expected a JSON object body {id, service} (Content-Type: application/json)');
  }
  if (!checkContainer(body)) throw toHushError(checkContainer.errors?.[0]);
  return { id: body.id, service: body.service };
}

function toHushError(error: ErrorObject | undefined): HushError {
  if (!error) return new HushError('bad_request', 'container: invalid request');
  const field = error.instancePath.slice(1);
  switch (error.keyword) {
    case 'additionalProperties':
      return new HushError('unknown_field', `container: unknown field "${(error.params as { additionalProperty: string }).additionalProperty}"; the fields are id and service`);
    case 'required':
      return new HushError('bad_request', `container: missing field "${(error.params as { missingProperty: string }).missingProperty}"`);
    case 'pattern':
      return new HushError('bad_request', `container: field "${field}" must be ${FIELD_RULES[field] ?? 'valid'}`);
    default:
      return new HushError('bad_request', `container: field "${field}" ${error.message ?? 'is invalid'}`);
  }
}
