/**
 * Merging several compose files, later over earlier, by the compose spec's
 * rules (13-merge.md):
 * - mappings merge key by key, the later value winning;
 * - sequences append, except:
 *   - services.*.secrets (and configs, volumes) are unique by target: an
 *     entry with the same target as an earlier one is merged into it;
 *   - command, entrypoint and healthcheck.test are replaced, not appended;
 *   - deploy.placement.constraints append without repeating a constraint;
 * - `!reset` removes the value, `!override` replaces it without merging.
 * Provenance follows every value so later errors name the right file.
 */
import type { DocPath, PathSegment } from './errors.js';
import { get, isYamlMap, put, type YamlMap, type YamlValue } from './model.js';
import type { Provenance } from './provenance.js';
import { pathKey } from './source.js';

/** Merges the files' models in order; a lone file still gets its `!reset`s applied. */
export function mergeModels(models: YamlMap[], prov: Provenance): YamlMap {
  let merged: YamlMap | undefined;
  for (const model of models) {
    if (merged === undefined) {
      // Merging into an empty mapping applies the first file's own merge tags.
      const empty: YamlMap = {};
      prov.tag(empty, prov.of(model));
      merged = mergeMaps(empty, model, [], prov);
    } else {
      merged = mergeMaps(merged, model, [], prov);
    }
  }
  return merged ?? {};
}

/** `base` and `over` at merged path `path`; `over` comes straight from one file, so its provenance knows its tags. */
export function mergeMaps(base: YamlMap, over: YamlMap, path: DocPath, prov: Provenance): YamlMap {
  const out: YamlMap = {};
  prov.tag(out, prov.of(over));
  for (const key of Object.keys(base)) {
    put(out, key, base[key]);
    prov.tagChild(out, key, prov.of(base, key));
  }
  for (const key of Object.keys(over)) {
    const origin = prov.of(over, key);
    const tag = origin.file.tags.get(pathKey(origin.path));
    if (tag === 'reset') {
      delete out[key];
      continue;
    }
    const earlier = get(base, key);
    const value = tag === 'override' || earlier === undefined ? over[key] : mergeValue(earlier, over[key], [...path, key], prov);
    put(out, key, value);
    prov.tagChild(out, key, origin);
  }
  return out;
}

function mergeValue(base: YamlValue, over: YamlValue, path: DocPath, prov: Provenance): YamlValue {
  if (isYamlMap(base) && isYamlMap(over)) return mergeMaps(base, over, path, prov);
  if (Array.isArray(base) && Array.isArray(over)) {
    if (isServiceField(path, 'command') || isServiceField(path, 'entrypoint') || isServiceField(path, 'healthcheck', 'test')) return over;
    if (isServiceField(path, 'secrets') || isServiceField(path, 'configs')) return mergeUnique(base, over, path, prov, mountKey);
    if (isServiceField(path, 'deploy', 'placement', 'constraints')) return mergeUnique(base, over, path, prov, (v) => (typeof v === 'string' ? v : undefined));
    return appendAll(base, over, prov);
  }
  return over;
}

/** True for `services.<any>.<fields...>`. */
function isServiceField(path: DocPath, ...fields: string[]): boolean {
  return path.length === fields.length + 2 && path[0] === 'services' && fields.every((f, i) => path[i + 2] === f);
}

/** The file name a secret entry mounts at: what makes two entries "the same" when merging. */
export function mountKey(entry: YamlValue): string | undefined {
  if (typeof entry === 'string') return entry;
  if (!isYamlMap(entry)) return undefined;
  const target = get(entry, 'target');
  if (typeof target === 'string') return target.startsWith('/run/secrets/') ? target.slice('/run/secrets/'.length) : target;
  const source = get(entry, 'source');
  return typeof source === 'string' ? source : undefined;
}

function appendAll(base: YamlValue[], over: YamlValue[], prov: Provenance): YamlValue[] {
  const out: YamlValue[] = [];
  prov.tag(out, prov.of(over));
  base.forEach((v, i) => push(out, v, prov.of(base, i), prov));
  over.forEach((v, i) => push(out, v, prov.of(over, i), prov));
  return out;
}

function mergeUnique(base: YamlValue[], over: YamlValue[], path: DocPath, prov: Provenance, keyOf: (v: YamlValue) => string | undefined): YamlValue[] {
  const out: YamlValue[] = [];
  prov.tag(out, prov.of(over));
  const index = new Map<string, number>();
  base.forEach((v, i) => {
    const key = keyOf(v);
    // Duplicates inside one file are kept: the plan reports them with their line.
    if (key !== undefined && !index.has(key)) index.set(key, out.length);
    push(out, v, prov.of(base, i), prov);
  });
  over.forEach((v, i) => {
    const key = keyOf(v);
    const at = key === undefined ? undefined : index.get(key);
    if (at === undefined) {
      push(out, v, prov.of(over, i), prov);
      return;
    }
    const earlier = out[at];
    out[at] = isYamlMap(earlier) && isYamlMap(v) ? mergeMaps(earlier, v, [...path, at], prov) : v;
    prov.tagChild(out, at, prov.of(over, i));
  });
  return out;
}

function push(out: YamlValue[], value: YamlValue, origin: ReturnType<Provenance['of']>, prov: Provenance): void {
  prov.tagChild(out, out.length as PathSegment, origin);
  out.push(value);
}
