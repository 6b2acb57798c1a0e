/**
 * A compose file as plain values, interpolated, every container tagged with
 * its file and path. Interpolation happens per file, before merging, as the
 * compose spec says; it applies to values, never to keys.
 */
import type { DocPath } from './errors.js';
import { interpolate, InterpolationError, type Lookup } from './interpolate.js';
import type { Provenance } from './provenance.js';
import { errorAt, type SourceFile } from './source.js';

export type YamlValue = null | boolean | number | string | YamlValue[] | YamlMap;
export interface YamlMap {
  [key: string]: YamlValue;
}

export function isYamlMap(value: unknown): value is YamlMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** Own-property read: a key named "constructor" or "__proto__" must not find Object's. */
export function get(map: YamlMap, key: string): YamlValue | undefined {
  return Object.hasOwn(map, key) ? map[key] : undefined;
}

/** Sets an own property, safe for a key named "__proto__". */
export function put(map: YamlMap, key: string, value: YamlValue): void {
  Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
}

export interface MaterialiseContext {
  lookup: Lookup;
  prov: Provenance;
  /** Called once per unset variable that had no default (compose substitutes ""). */
  onUnset: (name: string, file: SourceFile, path: DocPath) => void;
}

/** The file's content as plain values with variables substituted. */
export function materialise(file: SourceFile, ctx: MaterialiseContext): YamlValue {
  let raw: unknown;
  try {
    // maxAliasCount bounds alias expansion ("billion laughs").
    raw = file.doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw errorAt(file, [], `invalid YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
  return walk(raw, [], file, ctx);
}

function walk(value: unknown, path: DocPath, file: SourceFile, ctx: MaterialiseContext): YamlValue {
  if (typeof value === 'string') {
    try {
      return interpolate(value, ctx.lookup, (name) => ctx.onUnset(name, file, path));
    } catch (err) {
      if (err instanceof InterpolationError) throw errorAt(file, path, err.message);
      throw err;
    }
  }
  if (Array.isArray(value)) {
    const out = value.map((item, i) => walk(item, [...path, i], file, ctx));
    ctx.prov.tag(out, { file, path });
    return out;
  }
  if (isYamlMap(value)) {
    const out: YamlMap = {};
    for (const key of Object.keys(value)) put(out, key, walk(value[key], [...path, key], file, ctx));
    ctx.prov.tag(out, { file, path });
    return out;
  }
  if (value instanceof Uint8Array) throw errorAt(file, path, 'a !!binary value has no place in a compose file; put the bytes in a file and use file:');
  // Numbers, booleans, null.
  return value as YamlValue;
}
