/**
 * The Docker Engine API subset that lets the stock `docker` CLI manage hush
 * secrets: `docker secret create|ls|inspect|rm` against
 * DOCKER_HOST=tcp://STORE:2476 with DOCKER_TLS_VERIFY=1 and
 * DOCKER_CERT_PATH=$HUSH_HOME.
 *
 * The CLI first pings (HEAD /_ping, reading the API-Version header to pick
 * the /v1.NN prefix of later calls), then calls /v1.NN/secrets/...; the same
 * router is mounted with and without that prefix. Shapes follow the Engine
 * API (Swarm `Secret` objects, errors as {"message"}); responses never hold
 * a value, as in Docker. Roles come from the route table in src/acl like the
 * native routes; this module only translates.
 */
import { Router, type Request } from 'express';
import { arch, cpus, hostname, release, totalmem } from 'node:os';
import { HushError } from '../errors/index.js';
import { STACK_LABEL, type NodeStore, type RevisionedSecret, type SecretStore } from '../store/index.js';
import { decodeBase64, validator, type Validator } from '../http/index.js';

/**
 * The API version we answer with. 1.41 is what Debian's 20.10 client speaks
 * at most, and newer clients (28.x) negotiate down to it; nothing in the
 * secrets API changed after it.
 */
export const DOCKER_API_VERSION = '1.41';
/** The oldest version with the secrets API (Docker 1.13). */
const DOCKER_MIN_API_VERSION = '1.25';
/** The hush release, as `docker version` shows it. */
const HUSH_VERSION = '0.1.0';

/** `/v1.NN` as the first path segment; the router is mounted under it too. */
export const DOCKER_VERSION_PREFIX = /^\/v1\.\d+(?=\/|$)/i;

const DOCKER_ROOT_SEGMENTS = new Set(['_ping', 'version', 'info', 'secrets']);

/** True for paths that the Docker-compatible routes own: their errors take Docker's shape. */
export function isDockerPath(path: string): boolean {
  const first = path.split('/')[1]?.toLowerCase() ?? '';
  return /^v1\.\d+$/.test(first) || DOCKER_ROOT_SEGMENTS.has(first);
}

export interface DockerContext {
  secrets: SecretStore;
  nodes: NodeStore;
}

/** Docker's `Secret` object. No `Data`: Docker never returns it and neither does hush. */
interface DockerSecret {
  ID: string;
  Version: { Index: number };
  CreatedAt: string;
  UpdatedAt: string;
  Spec: { Name: string; Labels: Record<string, string> };
}

interface DockerSecretSpec {
  Name: string;
  Labels?: Record<string, string> | null;
  Data?: string | null;
  /** Docker's external secret stores and templating; hush holds values itself, so these must be absent or null. */
  Driver?: null;
  Templating?: null;
}

const specProperties = {
  Name: { type: 'string' },
  Labels: { type: 'object', nullable: true, required: [], additionalProperties: { type: 'string' } },
  Data: { type: 'string', nullable: true },
  Driver: { type: 'null' },
  Templating: { type: 'null' },
};

/** Body of POST /secrets/create (Docker's SecretSpec). */
const dockerCreateSchema = { type: 'object', additionalProperties: false, required: ['Name', 'Data'], properties: specProperties };
/** Body of POST /secrets/{id}/update: the spec as inspected, with new Labels. */
const dockerUpdateSchema = { type: 'object', additionalProperties: false, required: ['Name'], properties: specProperties };

const createBody: Validator<DockerSecretSpec> = validator('docker secret create', dockerCreateSchema as never, {});
const updateBody: Validator<DockerSecretSpec> = validator('docker secret update', dockerUpdateSchema as never, {});

function toDockerSecret(s: RevisionedSecret): DockerSecret {
  return { ID: s.id, Version: { Index: s.revision }, CreatedAt: s.createdAt, UpdatedAt: s.updatedAt, Spec: { Name: s.name, Labels: s.labels } };
}

export function dockerRoutes(ctx: DockerContext): Router {
  const router = Router({ caseSensitive: false });

  // express answers HEAD with the GET handler, minus the body: `HEAD /_ping` is what the CLI sends.
  router.get('/_ping', (_req, res) => {
    res.set({
      'API-Version': DOCKER_API_VERSION,
      'Docker-Experimental': 'false',
      OSType: 'linux',
      // The CLI reads this to decide that Swarm commands (`docker secret`) apply.
      Swarm: 'active/manager',
      'Cache-Control': 'no-cache, no-store, must-revalidate',
      Pragma: 'no-cache',
    });
    res.type('text/plain').send('OK');
  });

  router.get('/version', (_req, res) => {
    res.set('API-Version', DOCKER_API_VERSION).json({
      Platform: { Name: 'hush' },
      Components: [{ Name: 'hush store', Version: HUSH_VERSION, Details: { ApiVersion: DOCKER_API_VERSION } }],
      Version: HUSH_VERSION,
      ApiVersion: DOCKER_API_VERSION,
      MinAPIVersion: DOCKER_MIN_API_VERSION,
      Os: 'linux',
      Arch: goArch(arch()),
      KernelVersion: release(),
    });
  });

  // A Swarm manager as the CLI expects one; the counts are hush's own objects.
  router.get('/info', async (_req, res) => {
    const nodes = await ctx.nodes.list();
    res.json({
      ID: '',
      Name: hostname(),
      ServerVersion: HUSH_VERSION,
      OperatingSystem: 'hush secrets store',
      OSType: 'linux',
      Architecture: goArch(arch()),
      KernelVersion: release(),
      NCPU: cpus().length,
      MemTotal: totalmem(),
      Containers: 0,
      ContainersRunning: 0,
      ContainersPaused: 0,
      ContainersStopped: 0,
      Images: 0,
      Driver: '',
      ExperimentalBuild: false,
      Labels: [],
      Swarm: {
        NodeID: '',
        NodeAddr: '',
        LocalNodeState: 'active',
        ControlAvailable: true,
        Error: '',
        RemoteManagers: null,
        Nodes: nodes.length,
        Managers: 1,
      },
    });
  });

  router.post('/secrets/create', async (req, res) => {
    const spec = createBody(req.body);
    const created = await ctx.secrets.create(spec.Name, decodeBase64('Data', spec.Data ?? ''), spec.Labels ?? {});
    res.status(201).json({ ID: created.id });
  });

  router.get('/secrets', async (req, res) => {
    const filters = parseFilters(req);
    const all = await ctx.secrets.listRevisioned();
    res.json(all.filter((s) => matchesFilters(s, filters)).map(toDockerSecret));
  });

  router.get('/secrets/:id', async (req, res) => {
    res.json(toDockerSecret(await findSecret(ctx.secrets, req.params.id)));
  });

  router.delete('/secrets/:id', async (req, res) => {
    const secret = await findSecret(ctx.secrets, req.params.id);
    try {
      await ctx.secrets.remove(secret.name);
    } catch (err) {
      // Docker answers a secret in use with InvalidArgument, a 400 ("secret 'x' is in use by the
      // following service: web"); the native route keeps its 409. The message stays hush's.
      if (err instanceof HushError && err.code === 'in_use') throw new HushError('bad_request', err.message);
      throw err;
    }
    res.status(204).end();
  });

  router.post('/secrets/:id/update', async (req, res) => {
    const version = parseVersion(req.query.version);
    const spec = updateBody(req.body);
    const secret = await findSecret(ctx.secrets, req.params.id);
    // Docker's rule and message: a secret's value and name are immutable (hush rotates with `hush secret rotate`).
    if (spec.Name !== secret.name || (spec.Data !== undefined && spec.Data !== null && spec.Data !== '')) {
      throw new HushError('bad_request', `only updates to Labels are allowed; to change the value of "${secret.name}", run \`hush secret rotate ${secret.name}\``);
    }
    const labels = spec.Labels ?? {};
    // The project label is what deploy, prune and `stack rm` (operator actions) act on: moving a secret
    // into a project would let an operator remove a secret it may not remove. Only deploys set it.
    if (labels[STACK_LABEL] !== secret.labels[STACK_LABEL]) {
      throw new HushError('forbidden', `the label ${STACK_LABEL} is managed by \`hush deploy\` and cannot be added, changed or removed here`);
    }
    await ctx.secrets.replaceLabels(secret.name, labels, version);
    res.status(200).end();
  });

  return router;
}

/** Docker's lookup order for `{id}`: the full ID or the name, then an unambiguous ID prefix. */
async function findSecret(secrets: SecretStore, idOrName: string): Promise<RevisionedSecret> {
  try {
    return await secrets.getRevisioned(idOrName);
  } catch (err) {
    if (!(err instanceof HushError) || err.code !== 'not_found') throw err;
  }
  const byPrefix = idOrName === '' ? [] : (await secrets.listRevisioned()).filter((s) => s.id.startsWith(idOrName));
  if (byPrefix.length === 1) return byPrefix[0]!;
  if (byPrefix.length > 1) throw new HushError('bad_request', `secret ${idOrName} is ambiguous (${byPrefix.length} matches found)`);
  throw new HushError('not_found', `secret ${idOrName} not found`);
}

function parseVersion(raw: unknown): number {
  const text = typeof raw === 'string' ? raw : '';
  if (!/^\d{1,15}$/.test(text)) throw new HushError('bad_request', 'invalid secret version: give ?version=N, the Version.Index of the secret as inspected');
  return Number(text);
}

const FILTER_KEYS = ['id', 'label', 'name', 'names'] as const;
type FilterKey = (typeof FILTER_KEYS)[number];
type Filters = Partial<Record<FilterKey, string[]>>;

/**
 * The `filters` query parameter: JSON, `{"name": {"db": true}}` as clients
 * send it today or `{"name": ["db"]}` as older ones did. An unknown key is
 * refused, as Docker does.
 */
function parseFilters(req: Request): Filters {
  const raw = req.query.filters;
  if (raw === undefined || raw === '') return {};
  if (typeof raw !== 'string') throw new HushError('bad_request', 'invalid filters: give one "filters" query parameter holding JSON');
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new HushError('bad_request', 'invalid filters: the "filters" query parameter is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new HushError('bad_request', 'invalid filters: expected a JSON object');
  const filters: Filters = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!(FILTER_KEYS as readonly string[]).includes(key)) throw new HushError('bad_request', `invalid filter '${key}'; secrets filter on ${FILTER_KEYS.join(', ')}`);
    filters[key as FilterKey] = filterValues(key, value);
  }
  return filters;
}

/** `["a", "b"]`, or `{"a": true, "b": true}` where only the `true` entries count (Docker's map form). */
function filterValues(key: string, value: unknown): string[] {
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'boolean')) {
    return Object.entries(value as Record<string, boolean>).filter(([, on]) => on).map(([v]) => v);
  }
  throw new HushError('bad_request', `invalid filter '${key}': expected {"value": true, ...} or a list of strings`);
}

/**
 * Docker's semantics: values of one key are alternatives (any may match),
 * different keys must all match; `name` and `id` match a prefix, `names` the
 * whole name, and every `label` (`key` or `key=value`) must hold.
 */
function matchesFilters(s: RevisionedSecret, f: Filters): boolean {
  const any = (values: string[] | undefined, test: (v: string) => boolean) => values === undefined || values.length === 0 || values.some(test);
  if (!any(f.name, (v) => s.name.startsWith(v))) return false;
  if (!any(f.names, (v) => s.name === v)) return false;
  if (!any(f.id, (v) => s.id.startsWith(v))) return false;
  return (f.label ?? []).every((v) => {
    const eq = v.indexOf('=');
    if (eq < 0) return Object.hasOwn(s.labels, v);
    return s.labels[v.slice(0, eq)] === v.slice(eq + 1);
  });
}

/** Node's architecture names as Go (and so Docker) spells them. */
function goArch(nodeArch: string): string {
  return ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm' } as Record<string, string>)[nodeArch] ?? nodeArch;
}
