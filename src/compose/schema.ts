/**
 * Validation against the published compose-spec JSON schema, one file at a
 * time after interpolation (as compose-go does), so an error names the file
 * it is in. ajv's errors are reduced to the one that tells the user what to
 * change, as a single line.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { COMPOSE_SPEC_SCHEMA } from './compose-spec-schema.js';
import type { DocPath, PathSegment } from './errors.js';
import { isYamlMap, put, type YamlMap, type YamlValue } from './model.js';
import { errorAt, sourceText, type SourceFile } from './source.js';

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (compiled === undefined) {
    const ajv = new Ajv({
      // The spec's schema uses keywords and formats ajv's strict mode rejects; it is trusted, vendored text.
      strict: false,
      // Its "$schema" is the https spelling of draft-07, which ajv does not know by that name.
      validateSchema: false,
      // compose-go checks formats (durations, ports) when it converts values; hush ignores those fields.
      validateFormats: false,
      allErrors: true,
      verbose: true,
    });
    compiled = ajv.compile(COMPOSE_SPEC_SCHEMA);
  }
  return compiled;
}

/** Throws a ComposeError for the first problem the schema finds in this file's interpolated content. */
export function validateAgainstSpec(file: SourceFile, model: YamlValue): void {
  const check = validator();
  if (check(castForSchema(model))) return;
  const errors = check.errors ?? [];
  const chosen = pickError(errors);
  if (chosen === undefined) return;
  const { path, reason } = describe(chosen, errors, file);
  throw errorAt(file, path, reason);
}

/**
 * The schema types a secret's uid/gid as strings, but Docker's own examples
 * write `uid: 103`; hush accepts both (the grant rules read decimal text), so
 * numbers are shown to the schema as text. A copy: the model is unchanged.
 */
function castForSchema(model: YamlValue): YamlValue {
  if (!isYamlMap(model) || !isYamlMap(model.services)) return model;
  const services: YamlMap = {};
  for (const [name, svc] of Object.entries(model.services)) {
    if (!isYamlMap(svc) || !Array.isArray(svc.secrets)) {
      put(services, name, svc);
      continue;
    }
    const secrets = svc.secrets.map((entry) => {
      if (!isYamlMap(entry)) return entry;
      const copy: YamlMap = { ...entry };
      for (const id of ['uid', 'gid']) if (typeof copy[id] === 'number') copy[id] = String(copy[id]);
      return copy;
    });
    const copy: YamlMap = { ...svc };
    copy.secrets = secrets;
    put(services, name, copy);
  }
  return { ...model, services };
}

function pathOf(err: ErrorObject): PathSegment[] {
  if (err.instancePath === '') return [];
  return err.instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

/** The path the user should look at: an unknown key is reported at the key itself. */
function errorPath(err: ErrorObject): PathSegment[] {
  const base = pathOf(err);
  if (err.keyword === 'additionalProperties') base.push(String((err.params as { additionalProperty: string }).additionalProperty));
  return base;
}

const COMBINATORS = new Set(['oneOf', 'anyOf', 'allOf', 'not', 'if']);

/**
 * ajv reports every failing branch of a oneOf (short vs long syntax, list vs
 * mapping). The first error marks the offending value; among the errors about
 * that value and below it, the deepest concrete one says the most.
 */
function pickError(errors: ErrorObject[]): ErrorObject | undefined {
  const first = errors[0];
  if (first === undefined) return undefined;
  const prefix = first.instancePath;
  const related = errors.filter((e) => e.instancePath === prefix || e.instancePath.startsWith(`${prefix}/`));
  const score = (e: ErrorObject): number => errorPath(e).length * 10 + (COMBINATORS.has(e.keyword) ? 0 : e.keyword === 'additionalProperties' ? 2 : 1);
  return related.reduce((best, e) => (score(e) > score(best) ? e : best), first);
}

function describe(err: ErrorObject, all: ErrorObject[], file: SourceFile): { path: DocPath; reason: string } {
  const path = errorPath(err);
  switch (err.keyword) {
    case 'additionalProperties': {
      const key = path[path.length - 1] as string;
      const parent = path.slice(0, -1);
      // Under services:, secrets:, networks: ... the keys are names chosen by the user.
      if (parent.length === 1 && typeof parent[0] === 'string' && ['services', 'secrets', 'configs', 'networks', 'volumes', 'models'].includes(parent[0])) {
        return { path, reason: `"${key}" is not a valid name; use letters, digits, ".", "_" and "-"` };
      }
      const allowed = Object.keys((err.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {});
      const near = closest(key, allowed);
      const hint = near !== undefined ? `; did you mean "${near}"?` : allowed.length > 0 && allowed.length <= 12 ? `; allowed keys: ${allowed.join(', ')}` : '';
      return { path, reason: `unknown key "${key}"${hint}` };
    }
    case 'type': {
      // Every branch of a oneOf that failed on type at this same place: "a string or an object".
      const types = new Set<string>();
      for (const e of all) {
        if (e.keyword === 'type' && e.instancePath === err.instancePath) {
          const t = (e.params as { type: string | string[] }).type;
          for (const one of Array.isArray(t) ? t : [t]) types.add(one);
        }
      }
      return { path, reason: `must be ${[...types].map(article).join(' or ')}, not ${shown(err.data, file, path)}` };
    }
    case 'enum':
      return { path, reason: `${shown(err.data, file, path)} is not allowed; use one of ${((err.params as { allowedValues: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'required':
      return { path, reason: `the key "${(err.params as { missingProperty: string }).missingProperty}" is required here` };
    case 'uniqueItems':
      return { path, reason: 'contains the same entry twice' };
    default:
      return { path, reason: `${shown(err.data, file, path)}: ${err.message ?? 'does not match the compose specification'}` };
  }
}

function article(type: string): string {
  const names: Record<string, string> = { object: 'a mapping', array: 'a list', string: 'a string', number: 'a number', integer: 'an integer', boolean: 'true or false', null: 'null' };
  return names[type] ?? type;
}

function shown(value: unknown, file: SourceFile, path: DocPath): string {
  if (Array.isArray(value)) return 'a list';
  if (isYamlMap(value)) return 'a mapping';
  const text = sourceText(file, path);
  return text !== undefined ? JSON.stringify(text) : JSON.stringify(value);
}

/** The allowed key nearest to a misspelt one, if it is close enough to be a typo. */
function closest(key: string, allowed: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 4)) + 1;
  for (const candidate of allowed) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length];
}
