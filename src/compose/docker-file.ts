/**
 * The compose file `hush compose` hands to docker compose: the user's files
 * as merged and interpolated here, with each service's `secrets:` replaced
 * by one hush volume at /run/secrets. The volume's name is the hush service
 * (`<project>_<service>`), whose grants already carry each secret's target,
 * uid, gid and mode, so the agent's FUSE mount shows exactly the files the
 * compose file asked for; the file itself holds no secret value.
 *
 * Written for Debian's docker-compose 1.29 as much as for compose v2: no
 * top-level `name:` or `version:`, no top-level `secrets:` (compose v1 would
 * bind `file:` secrets itself and refuse external ones), and, because the
 * values are already interpolated, every "$" is written as "$$" so compose
 * does not interpolate them a second time.
 */
import { stringify } from 'yaml';
import type { ServiceSpec } from '../acl/index.js';
import { ComposeError } from './errors.js';
import { get, isYamlMap, put, type YamlMap, type YamlValue } from './model.js';

const SECRETS_DIR = '/run/secrets';
/** Top-level keys docker compose must not see: hush applied them, or 1.29 refuses them. */
const DROPPED_TOP = new Set(['name', 'version', 'secrets']);

export interface DockerFileOptions {
  project: string;
  /** The merged model (LoadResult.model). */
  model: YamlMap;
  /** The plan's services: which hush service each compose service became, and whether it has grants. */
  services: ServiceSpec[];
  /** The volume driver: the agent's --docker-plugin name. */
  driver: string;
}

/** The top-level volume key hush adds for a service; chosen to stay clear of the user's own keys. */
export const hushVolumeKey = (service: string): string => `hush-secrets-${service}`;

export function dockerComposeFile(opts: DockerFileOptions): string {
  const out: YamlMap = {};
  for (const key of Object.keys(opts.model)) if (!DROPPED_TOP.has(key)) put(out, key, opts.model[key]);

  const granted = new Set(opts.services.filter((s) => s.grants.length > 0).map((s) => s.name));
  const services = get(opts.model, 'services');
  const volumes: YamlMap = isYamlMap(get(opts.model, 'volumes')) ? { ...(get(opts.model, 'volumes') as YamlMap) } : {};
  if (isYamlMap(services)) {
    const rewritten: YamlMap = {};
    for (const key of Object.keys(services)) {
      const svc = services[key];
      if (!isYamlMap(svc)) {
        put(rewritten, key, svc);
        continue;
      }
      const copy: YamlMap = { ...svc };
      delete copy.secrets;
      const hushService = `${opts.project}_${key}`;
      if (granted.has(hushService)) {
        const own = Array.isArray(copy.volumes) ? copy.volumes : [];
        for (const v of own) {
          const target = volumeTarget(v);
          if (target !== undefined && (target === SECRETS_DIR || target.startsWith(`${SECRETS_DIR}/`))) {
            throw new ComposeError(`services.${key}.volumes: "${target}" is where hush mounts the service's secrets; mount it elsewhere`);
          }
        }
        const volumeKey = hushVolumeKey(key);
        if (Object.hasOwn(volumes, volumeKey)) throw new ComposeError(`volumes.${volumeKey}: hush needs this volume name for service "${key}"; rename your volume`);
        copy.volumes = [...own, { type: 'volume', source: volumeKey, target: SECRETS_DIR, read_only: true }];
        put(volumes, volumeKey, { driver: opts.driver, name: hushService });
      }
      put(rewritten, key, copy);
    }
    put(out, 'services', rewritten);
  }
  if (Object.keys(volumes).length > 0) put(out, 'volumes', volumes);
  // YAML 1.1: docker-compose 1.29 reads with PyYAML, where an unquoted yes/no/on/off is a boolean.
  return stringify(escapeDollars(out), { version: '1.1', lineWidth: 0 });
}

/** Where a `volumes:` entry mounts: `src:target[:mode]`, `target`, or `{target: ...}`. */
function volumeTarget(v: YamlValue): string | undefined {
  if (typeof v === 'string') {
    const parts = v.split(':');
    return parts.length === 1 ? parts[0] : parts[1];
  }
  if (isYamlMap(v)) {
    const target = get(v, 'target');
    return typeof target === 'string' ? target : undefined;
  }
  return undefined;
}

function escapeDollars(value: YamlValue): YamlValue {
  // A function, not '$$' as the replacement: in a replacement string "$$" means one "$".
  if (typeof value === 'string') return value.replaceAll('$', () => '$$');
  if (Array.isArray(value)) return value.map(escapeDollars);
  if (isYamlMap(value)) {
    const out: YamlMap = {};
    for (const key of Object.keys(value)) put(out, key, escapeDollars(value[key]));
    return out;
  }
  return value;
}
