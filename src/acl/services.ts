/**
 * A service as the acl sees it: a name, the secrets it is granted, and where
 * it may run. The same shape comes from `hush service create`, REST and compose.
 */
import { HushError } from '../errors/index.js';
import { assertValidName } from '../rules/index.js';
import { parseConstraint } from './constraints.js';
import { validateGrants, type Grant } from './grants.js';

export interface ServiceSpec {
  name: string;
  grants: Grant[];
  /** Canonical constraint texts (as `parseConstraint(...).text`), kept as strings so records stay plain JSON. */
  constraints: string[];
}

/** Either form callers hold services in; lookups go through `lookupService`. */
export type ServiceIndex = ReadonlyMap<string, ServiceSpec> | Readonly<Record<string, ServiceSpec>>;

const SERVICE_FIELDS = new Set(['name', 'grants', 'constraints']);

/**
 * Checks an untrusted service document. Unknown fields are refused rather
 * than dropped: a misspelt "constraint" silently ignored would place the
 * service, and hand it secrets, on every node.
 */
export function validateServiceSpec(input: unknown): ServiceSpec {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new HushError('bad_request', 'service must be an object {name, grants?, constraints?}');
  }
  const obj = input as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!SERVICE_FIELDS.has(key)) {
      throw new HushError('unknown_field', `service: unknown field "${key}"; the fields are name, grants, constraints`);
    }
  }
  assertValidName(obj.name, 'service');
  const name = obj.name;

  const grantsIn = obj.grants ?? [];
  if (!Array.isArray(grantsIn)) throw new HushError('bad_request', `service "${name}": grants must be a list`);
  let grants: Grant[];
  try {
    grants = validateGrants(grantsIn);
  } catch (err) {
    throw withService(err, name);
  }

  const constraintsIn = obj.constraints ?? [];
  if (!Array.isArray(constraintsIn)) throw new HushError('bad_request', `service "${name}": constraints must be a list of strings`);
  const constraints: string[] = [];
  for (const expr of constraintsIn) {
    if (typeof expr !== 'string') throw new HushError('bad_request', `service "${name}": constraints must be strings such as "node.labels.zone==eu"`);
    try {
      constraints.push(parseConstraint(expr).text);
    } catch (err) {
      throw withService(err, name);
    }
  }
  return { name, grants, constraints };
}

function withService(err: unknown, name: string): unknown {
  return err instanceof HushError ? new HushError(err.code, `service "${name}": ${err.message}`) : err;
}

/** Finds a service by name in a Map or a plain record, ignoring inherited properties such as "constructor". */
export function lookupService(services: ServiceIndex, name: string): ServiceSpec | undefined {
  if (services instanceof Map) return services.get(name);
  const rec = services as Readonly<Record<string, ServiceSpec>>;
  return Object.hasOwn(rec, name) ? rec[name] : undefined;
}

