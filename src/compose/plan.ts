/**
 * From the merged compose model to a deploy plan: the secrets to create (or
 * find, when external) and the services with their grants and constraints,
 * exactly what `POST /v1/deploy` takes. Every check that the schema cannot
 * make happens here, each reported at the line to fix: undefined secrets,
 * external secrets with a value, targets outside /run/secrets, bad modes and
 * ids, bad constraints, unreadable files, unset variables.
 */
import { basename, isAbsolute, join, resolve } from 'node:path';
import {
  assertValidTarget,
  DEFAULT_GID,
  DEFAULT_MODE,
  DEFAULT_UID,
  MAX_ID,
  MAX_MODE,
  parseConstraint,
  validateServiceSpec,
  type Grant,
  type ServiceSpec,
} from '../acl/index.js';
import { HushError } from '../errors/index.js';
import { assertValidLabels, assertValidName } from '../rules/index.js';
import type { ComposeError } from './errors.js';
import type { Lookup } from './interpolate.js';
import { mergeMaps } from './merge.js';
import { get, isYamlMap, type YamlMap, type YamlValue } from './model.js';
import type { Provenance } from './provenance.js';
import { readFailure, type ComposeReader } from './reader.js';
import { lineOf, sourceText } from './source.js';

/** The label docker stack deploy puts on what it creates; hush uses it to find a project's objects. */
export const STACK_NAMESPACE_LABEL = 'com.docker.stack.namespace';
const SECRETS_DIR = '/run/secrets/';

/** Builds the error for a reason at one place in the files. */
type Located = (reason: string) => ComposeError;

export interface PlannedSecret {
  /** The key under the top-level `secrets:` of the compose file. */
  key: string;
  /** The store's name: `<project>_<key>`, or `name:` as written. */
  name: string;
  /** External secrets must already exist; they carry no data and no labels. */
  external: boolean;
  labels: Record<string, string>;
  /** The value read from `file:` or `environment:`; absent for external secrets. */
  data?: Uint8Array;
}

/** The body of `POST /v1/deploy` without `prune` and `dryRun`. */
export interface DeployPlan {
  project: string;
  secrets: PlannedSecret[];
  services: ServiceSpec[];
}

export interface PlanContext {
  project: string;
  prov: Provenance;
  /** Process environment over `.env`: where `environment:` secrets are read from. */
  lookup: Lookup;
  /** Directory of the first compose file: compose resolves every relative path against it. */
  baseDir: string;
  reader: ComposeReader;
  /** False: leave `file:`/`environment:` values unread (`hush compose down` needs the file's shape, not its values). */
  readValues?: boolean;
}

export interface PlanResult {
  plan: DeployPlan;
  /** Fields accepted and not applied (`services.*.image`, `networks`), sorted, once each. */
  ignoredFields: string[];
  warnings: string[];
  /** The merged `services:` with `extends` applied: what `hush compose` hands to docker compose. */
  services: YamlMap;
}

/** Top-level keys hush applies or that carry no meaning for it. */
const APPLIED_TOP = new Set(['services', 'secrets', 'name', 'version']);
const SECRET_IGNORED = new Set(['driver', 'driver_opts', 'template_driver']);

export function buildPlan(model: YamlMap, ctx: PlanContext): PlanResult {
  const ignored = new Set<string>();
  const warnings: string[] = [];
  const { prov } = ctx;

  for (const key of Object.keys(model)) {
    if (key === 'include') {
      throw prov.error(model, key, 'include: is not supported by hush deploy; give the included files with -c instead');
    }
    if (key === 'version') warnings.push(prov.error(model, key, 'the attribute "version" is obsolete and ignored').message);
    if (!APPLIED_TOP.has(key) && !key.startsWith('x-')) ignored.add(key);
  }

  const secretDefs = mapAt(model, 'secrets');
  const secrets = new Map<string, PlannedSecret>();
  const createdBy = new Map<string, string>();
  for (const key of Object.keys(secretDefs)) {
    const planned = planSecret(key, secretDefs, ctx, ignored);
    const clash = createdBy.get(planned.name) ?? [...secrets.values()].find((s) => s.name === planned.name && (!s.external || !planned.external))?.key;
    if (clash !== undefined) {
      throw prov.error(secretDefs, key, `secret "${key}" would be stored as "${planned.name}", like secret "${clash}"; give one of them another name:`);
    }
    if (!planned.external) createdBy.set(planned.name, key);
    secrets.set(key, planned);
  }

  const serviceDefs = resolveExtends(mapAt(model, 'services'), prov);
  const services: ServiceSpec[] = [];
  for (const key of Object.keys(serviceDefs)) {
    const svc = serviceDefs[key];
    if (!isYamlMap(svc)) throw prov.error(serviceDefs, key, 'a service must be a mapping');
    noteIgnoredServiceFields(svc, ignored);
    services.push(planService(key, svc, serviceDefs, secrets, ctx));
  }

  return {
    plan: { project: ctx.project, secrets: [...secrets.values()], services },
    ignoredFields: [...ignored].sort(),
    warnings,
    services: serviceDefs,
  };
}

function mapAt(model: YamlMap, key: string): YamlMap {
  const value = get(model, key);
  return isYamlMap(value) ? value : {};
}

// ---------------------------------------------------------------- secrets

function planSecret(key: string, defs: YamlMap, ctx: PlanContext, ignored: Set<string>): PlannedSecret {
  const { prov } = ctx;
  const def = defs[key];
  if (!isYamlMap(def)) throw prov.error(defs, key, 'a secret must be a mapping with file:, environment: or external:');
  const fail = (field: string | undefined, reason: string): ComposeError => prov.error(def, field, reason);

  let external = false;
  let name: string | undefined;
  const ext = get(def, 'external');
  if (ext === true || ext === 'true') external = true;
  else if (isYamlMap(ext)) {
    // The old `external: {name: N}` form, still accepted by compose.
    external = true;
    const extName = get(ext, 'name');
    if (typeof extName === 'string') name = extName;
  } else if (ext !== undefined && ext !== false && ext !== 'false' && ext !== null) {
    throw fail('external', `external must be true or false, not ${JSON.stringify(ext)}`);
  }
  const explicit = get(def, 'name');
  if (typeof explicit === 'string') name = explicit;

  if (external) {
    for (const field of Object.keys(def)) {
      if (field !== 'external' && field !== 'name' && !field.startsWith('x-')) {
        throw fail(field, `secret "${key}" is external (it must exist already), so it cannot also have ${field}:; remove one of them`);
      }
    }
    const storeName = name ?? key;
    checkName(storeName, (r) => fail(name === undefined ? undefined : 'name', r));
    return { key, name: storeName, external: true, labels: {} };
  }

  for (const field of Object.keys(def)) if (SECRET_IGNORED.has(field)) ignored.add(`secrets.*.${field}`);
  const storeName = name ?? `${ctx.project}_${key}`;
  checkName(storeName, (r) => fail(name === undefined ? undefined : 'name', r));

  const file = get(def, 'file');
  const env = get(def, 'environment');
  if (file !== undefined && env !== undefined) throw fail(undefined, `secret "${key}" has both file: and environment:; keep one`);
  let data: Uint8Array | undefined;
  let from: string;
  if (ctx.readValues === false && (typeof file === 'string' || typeof env === 'string')) {
    from = 'unread';
  } else if (typeof file === 'string') {
    from = 'file';
    const path = absolutePath(file, ctx);
    try {
      data = ctx.reader.read(path);
    } catch (err) {
      throw fail('file', `cannot read secret file "${file}" (${path}): ${readFailure(err)}`);
    }
  } else if (typeof env === 'string') {
    from = 'environment';
    const value = ctx.lookup(env);
    if (value === undefined) throw fail('environment', `environment variable "${env}" is not set (secret "${key}" takes its value from it)`);
    data = new TextEncoder().encode(value);
  } else {
    throw fail(undefined, `secret "${key}" needs file: (a path), environment: (a variable name) or external: true`);
  }
  if (data?.length === 0) throw fail(from, `secret "${key}" would be empty; a secret needs at least one byte`);

  const labels = labelsOf(get(def, 'labels'));
  labels[STACK_NAMESPACE_LABEL] = ctx.project;
  try {
    assertValidLabels(labels);
  } catch (err) {
    throw rethrow(err, (r) => fail('labels', r));
  }
  return { key, name: storeName, external: false, labels, ...(data ? { data } : {}) };
}

/** `~/x` as the shell would, then relative to the first compose file's directory. */
function absolutePath(file: string, ctx: PlanContext): string {
  const home = ctx.lookup('HOME');
  const expanded = (file === '~' || file.startsWith('~/')) && home !== undefined ? join(home, file.slice(1)) : file;
  return isAbsolute(expanded) ? expanded : resolve(ctx.baseDir, expanded);
}

function labelsOf(value: YamlValue | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(value)) {
    for (const item of value) {
      if (typeof item !== 'string') continue;
      const eq = item.indexOf('=');
      if (eq < 0) out[item] = '';
      else out[item.slice(0, eq)] = item.slice(eq + 1);
    }
  } else if (isYamlMap(value)) {
    for (const [k, v] of Object.entries(value)) out[k] = v === null ? '' : String(v);
  }
  return out;
}

function checkName(name: string, at: Located): void {
  try {
    assertValidName(name, 'secret');
  } catch (err) {
    throw rethrow(err, at);
  }
}

/** A HushError from the shared rules (acl, rules), re-thrown as a ComposeError at the place `at` names. */
function rethrow(err: unknown, at: Located): unknown {
  return err instanceof HushError ? at(err.message) : err;
}

// ---------------------------------------------------------------- services

/**
 * `extends: {service: X}` within the files given: the service starts from X
 * (itself resolved first) and overrides it by the usual merge rules, so
 * inherited secrets and constraints are applied, not silently dropped.
 */
function resolveExtends(defs: YamlMap, prov: Provenance): YamlMap {
  // No services: (a file of secrets only) has nothing to resolve, and no place in a file.
  if (Object.keys(defs).length === 0) return defs;
  const done = new Map<string, YamlValue>();
  const resolveOne = (key: string, chain: string[]): YamlValue => {
    const known = done.get(key);
    if (known !== undefined) return known;
    const svc = defs[key];
    const ext = isYamlMap(svc) ? get(svc, 'extends') : undefined;
    if (!isYamlMap(svc) || ext === undefined) {
      done.set(key, svc);
      return svc;
    }
    let base: string | undefined;
    if (typeof ext === 'string') base = ext;
    else if (isYamlMap(ext)) {
      if (get(ext, 'file') !== undefined) throw prov.error(ext, 'file', 'extends with file: is not supported by hush deploy; give that file with another -c and extend the service by name');
      const s = get(ext, 'service');
      if (typeof s === 'string') base = s;
    }
    if (base === undefined) throw prov.error(svc, 'extends', 'extends needs service: NAME');
    if (!Object.hasOwn(defs, base)) throw prov.error(svc, 'extends', `service "${key}" extends "${base}", which is not defined`);
    if (chain.includes(base)) throw prov.error(svc, 'extends', `services extend each other in a loop: ${[...chain, base].join(' -> ')}`);
    const parent = resolveOne(base, [...chain, base]);
    const merged = isYamlMap(parent) ? mergeMaps(parent, svc, ['services', key], prov) : svc;
    delete merged.extends;
    done.set(key, merged);
    return merged;
  };
  const out: YamlMap = {};
  prov.tag(out, prov.of(defs));
  for (const key of Object.keys(defs)) {
    Object.defineProperty(out, key, { value: resolveOne(key, [key]), enumerable: true, writable: true, configurable: true });
    prov.tagChild(out, key, prov.of(defs, key));
  }
  return out;
}

function noteIgnoredServiceFields(svc: YamlMap, ignored: Set<string>): void {
  for (const [field, value] of Object.entries(svc)) {
    if (field.startsWith('x-') || field === 'secrets') continue;
    if (field !== 'deploy' || !isYamlMap(value)) {
      ignored.add(`services.*.${field}`);
      continue;
    }
    for (const [sub, subValue] of Object.entries(value)) {
      if (sub.startsWith('x-')) continue;
      if (sub !== 'placement' || !isYamlMap(subValue)) {
        ignored.add(`services.*.deploy.${sub}`);
        continue;
      }
      for (const p of Object.keys(subValue)) if (p !== 'constraints' && !p.startsWith('x-')) ignored.add(`services.*.deploy.placement.${p}`);
    }
  }
}

function planService(key: string, svc: YamlMap, defs: YamlMap, secrets: Map<string, PlannedSecret>, ctx: PlanContext): ServiceSpec {
  const { prov } = ctx;
  const name = `${ctx.project}_${key}`;
  try {
    assertValidName(name, 'service');
  } catch (err) {
    throw rethrow(err, (r) => prov.error(defs, key, r));
  }

  const grants: Grant[] = [];
  const entries = get(svc, 'secrets');
  if (Array.isArray(entries)) {
    const byTarget = new Map<string, number>();
    entries.forEach((entry, i) => {
      const grant = planGrant(entry, entries, i, secrets, prov);
      const earlier = byTarget.get(grant.target);
      if (earlier !== undefined) {
        const other = prov.of(entries, earlier);
        throw prov.error(entries, i, `target "${grant.target}" is already used by the entry at ${other.file.name}:${lineOf(other.file, other.path)}; give one of them another target:`);
      }
      byTarget.set(grant.target, i);
      grants.push(grant);
    });
  }

  const constraints: string[] = [];
  const deploy = get(svc, 'deploy');
  const placement = isYamlMap(deploy) ? get(deploy, 'placement') : undefined;
  const list = isYamlMap(placement) ? get(placement, 'constraints') : undefined;
  if (Array.isArray(list)) {
    list.forEach((expr, i) => {
      let text: string;
      try {
        text = parseConstraint(String(expr)).text;
      } catch (err) {
        throw rethrow(err, (r) => prov.error(list, i, r));
      }
      if (!constraints.includes(text)) constraints.push(text);
    });
  }

  try {
    // The store runs the same check; running it here means a plan that loads is a plan the store accepts.
    return validateServiceSpec({ name, grants, constraints });
  } catch (err) {
    throw rethrow(err, (r) => prov.error(defs, key, r));
  }
}

function planGrant(entry: YamlValue, list: YamlValue[], index: number, secrets: Map<string, PlannedSecret>, prov: Provenance): Grant {
  const undefinedSecret = (key: string): string => `secret "${key}" is not defined in the top-level secrets: section`;
  if (typeof entry === 'string') {
    const secret = secrets.get(entry);
    if (secret === undefined) throw prov.error(list, index, undefinedSecret(entry));
    return { source: secret.name, target: targetName(entry, (r) => prov.error(list, index, r)), uid: DEFAULT_UID, gid: DEFAULT_GID, mode: DEFAULT_MODE };
  }
  if (!isYamlMap(entry)) throw prov.error(list, index, 'must be a secret name or a mapping with source:');
  const source = get(entry, 'source');
  if (typeof source !== 'string') throw prov.error(list, index, 'source: is required (the key of a secret under the top-level secrets:)');
  const secret = secrets.get(source);
  if (secret === undefined) throw prov.error(entry, 'source', undefinedSecret(source));
  const target = get(entry, 'target');
  if (target !== undefined && typeof target !== 'string') throw prov.error(entry, 'target', 'target must be a string');
  return {
    source: secret.name,
    target: target === undefined ? targetName(source, (r) => prov.error(list, index, r)) : targetName(target, (r) => prov.error(entry, 'target', r)),
    uid: idOf(entry, 'uid', prov),
    gid: idOf(entry, 'gid', prov),
    mode: modeOf(entry, prov),
  };
}

/**
 * The file name under /run/secrets. `/run/secrets/NAME` is NAME; any other
 * absolute path is refused: hush serves one flat directory per container,
 * never files elsewhere in its filesystem.
 */
function targetName(raw: string, fail: Located): string {
  let name = raw;
  if (raw.startsWith('/')) {
    if (!raw.startsWith(SECRETS_DIR)) {
      const file = basename(raw) || 'db_password';
      throw fail(`target "${raw}" is outside /run/secrets; hush mounts secrets under /run/secrets only, so give a file name such as "${file}" (or "/run/secrets/${file}")`);
    }
    name = raw.slice(SECRETS_DIR.length);
  }
  if (name.split('/').includes('..')) throw fail(`target "${raw}" contains ".."; targets are file names directly under /run/secrets`);
  try {
    assertValidTarget(name, 'grant');
  } catch (err) {
    if (err instanceof HushError) throw fail(err.message.replace(/^grant: /, ''));
    throw err;
  }
  return name;
}

function idOf(entry: YamlMap, field: 'uid' | 'gid', prov: Provenance): number {
  const value = get(entry, field);
  if (value === undefined) return field === 'uid' ? DEFAULT_UID : DEFAULT_GID;
  const text = typeof value === 'number' ? String(value) : value;
  // Decimal digits only: "1e3", "0x10", "-1" and " 5" are typos, not ids.
  if (typeof text !== 'string' || !/^[0-9]+$/.test(text)) throw prov.error(entry, field, `${field} ${JSON.stringify(value)} is not a number; give 0..${MAX_ID}`);
  const n = Number(text);
  if (n > MAX_ID) throw prov.error(entry, field, `${field} ${text} is out of range; give 0..${MAX_ID}`);
  return n;
}

/**
 * Modes as Docker's compose loader reads them: a YAML number is the mode
 * (`0400` and `0o400` are octal, `256` is decimal), a string is octal text
 * (`"0400"`, `"400"`, `"0o400"`). Default 0444.
 */
function modeOf(entry: YamlMap, prov: Provenance): number {
  const value = get(entry, 'mode');
  if (value === undefined) return DEFAULT_MODE;
  const origin = prov.of(entry, 'mode');
  const written = sourceText(origin.file, origin.path) ?? String(value);
  const fail = (reason: string): ComposeError => prov.error(entry, 'mode', reason);
  const range = `give permission bits 0000..0777, e.g. 0440 (no setuid/setgid/sticky)`;
  if (typeof value === 'number') {
    if (/^0[0-9]+$/.test(written) && /[89]/.test(written)) throw fail(`mode ${written} is not octal (8 and 9 are not octal digits); ${range}`);
    if (!Number.isInteger(value)) throw fail(`mode ${written} is not an integer; ${range}`);
    if (value < 0 || value > MAX_MODE) {
      const decimal = /^[1-9][0-9]*$/.test(written) ? `; a number without a leading 0 is decimal (${written} is 0o${value.toString(8)}), write 0${written} for octal` : '';
      throw fail(`mode ${written} is out of range; ${range}${decimal}`);
    }
    return value;
  }
  if (typeof value !== 'string' || !/^(0o)?[0-7]+$/i.test(value)) throw fail(`mode ${JSON.stringify(value)} is not octal; write it like chmod, e.g. 0440`);
  const n = parseInt(value.replace(/^0o/i, ''), 8);
  if (n > MAX_MODE) throw fail(`mode "${value}" is out of range; ${range}`);
  return n;
}

