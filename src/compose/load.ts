/**
 * loadComposeProject: compose files → deploy plan, as `docker stack deploy`
 * does on the client: read, interpolate, validate each file against the
 * compose spec, merge, then map to secrets and services. Nothing is applied
 * here; the result is what the CLI sends to `POST /v1/deploy`.
 */
import { dirname, join, resolve } from 'node:path';
import { parseDotEnv, DotEnvError } from './dotenv.js';
import { ComposeError, type DocPath } from './errors.js';
import { interpolate, InterpolationError } from './interpolate.js';
import { mergeModels } from './merge.js';
import { isYamlMap, materialise, type YamlMap } from './model.js';
import { buildPlan, type DeployPlan } from './plan.js';
import { decideProjectName } from './project-name.js';
import { Provenance } from './provenance.js';
import { fileSystemReader, isMissing, readFailure, type ComposeReader } from './reader.js';
import { validateAgainstSpec } from './schema.js';
import { errorAt, lineOf, parseSource, type SourceFile } from './source.js';

export interface LoadOptions {
  /** Compose files in `-c` order; later files override earlier ones. */
  files: string[];
  /** `-p`: wins over everything else. */
  projectName?: string;
  /** The process environment: wins over the `.env` file beside the first compose file. */
  env: Readonly<Record<string, string | undefined>>;
  /** Where relative `files` are looked up; default the process's working directory. */
  cwd?: string;
  /** How files are read; default the filesystem. */
  reader?: ComposeReader;
  /** False: do not read `file:`/`environment:` secret values (their plan entries carry no data). Default true. */
  readValues?: boolean;
}

export interface LoadResult {
  project: string;
  plan: DeployPlan;
  /** Fields accepted and not applied (`services.*.image`, `networks`, ...), sorted, once each, for the CLI to print. */
  ignoredFields: string[];
  /** One line each (unset variables, obsolete `version`), located like errors. */
  warnings: string[];
}

/** A load for `hush compose`: the plan, and the model docker compose runs. */
export interface LoadWithModel extends LoadResult {
  /** The merged, interpolated files with `extends` applied. */
  model: YamlMap;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

export function loadComposeProject(opts: LoadOptions): LoadResult {
  const { project, plan, ignoredFields, warnings } = loadWithModel(opts);
  return { project, plan, ignoredFields, warnings };
}

export function loadWithModel(opts: LoadOptions): LoadWithModel {
  if (opts.files.length === 0) throw new ComposeError('no compose file given; use -c FILE');
  const reader = opts.reader ?? fileSystemReader;
  const cwd = opts.cwd ?? process.cwd();

  const sources = opts.files.map((name) => parseSource(name, resolve(cwd, name), readText(reader, resolve(cwd, name), name)));
  const baseDir = sources[0].dir;

  const dotEnvName = join(dirname(opts.files[0]), '.env');
  const env: Record<string, string> = { ...readDotEnv(reader, join(baseDir, '.env'), dotEnvName, opts.env) };
  for (const [k, v] of Object.entries(opts.env)) if (v !== undefined) env[k] = v;
  const lookup = (name: string): string | undefined => (Object.hasOwn(env, name) ? env[name] : undefined);

  const warnings: string[] = [];
  const unsetSeen = new Set<string>();
  const onUnset = (name: string, file: SourceFile, path: DocPath): void => {
    if (unsetSeen.has(name)) return;
    unsetSeen.add(name);
    warnings.push(errorAt(file, path, `variable "${name}" is not set; using an empty string`).message);
  };

  const project = decideProjectName({
    flag: opts.projectName,
    env: env.COMPOSE_PROJECT_NAME,
    fromFile: nameFromFiles(sources, lookup),
    dir: baseDir,
  });
  // Compose exposes the project name to interpolation, whichever way it was decided.
  env.COMPOSE_PROJECT_NAME = project;

  const prov = new Provenance();
  const models: YamlMap[] = sources.map((file) => {
    const model = materialise(file, { lookup, prov, onUnset });
    if (model === null) throw errorAt(file, [], 'the file is empty; a compose file is a mapping with services: and secrets:');
    validateAgainstSpec(file, model);
    if (!isYamlMap(model)) throw errorAt(file, [], 'a compose file must be a mapping with services: and secrets:');
    return model;
  });

  const merged = mergeModels(models, prov);
  const built = buildPlan(merged, { project, prov, lookup, baseDir, reader, readValues: opts.readValues });
  const model: YamlMap = { ...merged };
  if (Object.hasOwn(merged, 'services')) model.services = built.services;
  return { project, plan: built.plan, ignoredFields: built.ignoredFields, warnings: [...warnings, ...built.warnings], model };
}

function readText(reader: ComposeReader, path: string, name: string): string {
  let bytes: Uint8Array;
  try {
    bytes = reader.read(path);
  } catch (err) {
    throw new ComposeError(`cannot read the compose file (${path}): ${readFailure(err)}`, { file: name });
  }
  try {
    return decoder.decode(bytes);
  } catch {
    throw new ComposeError('the compose file is not UTF-8 text', { file: name });
  }
}

function readDotEnv(reader: ComposeReader, path: string, name: string, processEnv: LoadOptions['env']): Record<string, string> {
  let bytes: Uint8Array;
  try {
    bytes = reader.read(path);
  } catch (err) {
    // No .env is the common case; an unreadable one is a problem the user should see.
    if (isMissing(err)) return {};
    throw new ComposeError(`cannot read ${path}: ${readFailure(err)}`, { file: name });
  }
  try {
    return parseDotEnv(decoder.decode(bytes), processEnv);
  } catch (err) {
    if (err instanceof DotEnvError) throw new ComposeError(err.message, { file: name, line: err.line });
    if (err instanceof TypeError) throw new ComposeError('the .env file is not UTF-8 text', { file: name });
    throw err;
  }
}

/** The top-level `name:` of the last file that has one, interpolated (before COMPOSE_PROJECT_NAME exists). */
function nameFromFiles(sources: SourceFile[], lookup: (name: string) => string | undefined): { name: string; file: string; line: number } | undefined {
  for (const file of [...sources].reverse()) {
    const raw = file.doc.get('name');
    if (typeof raw !== 'string') continue;
    let name: string;
    try {
      name = interpolate(raw, lookup, () => undefined);
    } catch (err) {
      if (err instanceof InterpolationError) throw errorAt(file, ['name'], err.message);
      throw err;
    }
    return { name, file: file.name, line: lineOf(file, ['name']) };
  }
  return undefined;
}


