/**
 * Request-body validation with JSON Schema (ajv). Unknown fields are refused,
 * not ignored, so a typo like "lables" is an error instead of a silent no-op.
 */
import { Ajv, type ErrorObject, type JSONSchemaType } from 'ajv';
import { HushError } from '../errors/index.js';

const ajv = new Ajv({ allErrors: false, strict: true });

export type Validator<T> = (body: unknown) => T;

/**
 * Every request-body schema by its `what`, so the OpenAPI document
 * (openapi.ts) publishes the schemas that actually check requests.
 */
const bodySchemas = new Map<string, object>();

export function requestBodySchema(what: string): object | undefined {
  return bodySchemas.get(what);
}

/** `fieldRules` say in words what a field's `pattern` means, for the error message. */
export function validator<T>(what: string, schema: JSONSchemaType<T>, fieldRules: Record<string, string> = {}): Validator<T> {
  if (bodySchemas.has(what)) throw new Error(`two request validators are named "${what}"`);
  bodySchemas.set(what, schema);
  const check = ajv.compile(schema);
  return (body) => {
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new HushError('bad_request', `${what}: expected a JSON object body (Content-Type: application/json)`);
    }
    if (!check(body)) throw toHushError(what, check.errors?.[0], fieldRules);
    return body;
  };
}

function toHushError(what: string, error: ErrorObject | undefined, fieldRules: Record<string, string>): HushError {
  if (!error) return new HushError('bad_request', `${what}: invalid request`);
  const at = error.instancePath ? `field "${error.instancePath.slice(1).replaceAll('/', '.')}"` : 'body';
  switch (error.keyword) {
    case 'additionalProperties':
      return new HushError('unknown_field', `${what}: unknown field "${(error.params as { additionalProperty: string }).additionalProperty}"`);
    case 'required':
      return new HushError('bad_request', `${what}: missing field "${(error.params as { missingProperty: string }).missingProperty}"`);
    case 'pattern':
      return new HushError('bad_request', `${what}: ${at} must be ${fieldRules[error.instancePath.slice(1)] ?? `like ${(error.params as { pattern: string }).pattern}`}`);
    default:
      return new HushError('bad_request', `${what}: ${at} ${error.message ?? 'is invalid'}`);
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64: Buffer.from(x, 'base64') would silently skip junk characters. */
export function decodeBase64(field: string, text: string): Uint8Array {
  if (!BASE64.test(text)) throw new HushError('bad_request', `field "${field}" must be standard base64`);
  return new Uint8Array(Buffer.from(text, 'base64'));
}
