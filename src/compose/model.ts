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

/**
 * Bounds on what a file may expand to. yaml's maxAliasCount bounds how many
 * times aliases are followed, not how much each one brings: one anchor on a
 * 50,000-item list used 900 times passed it and took 11 s and 400 MB to walk
 * (a bigger list runs out of memory). No real compose file comes near these.
 */
export const MAX_VALUES = 200_000;
/**
 * The compose spec declares most lists `uniqueItems`, which ajv checks
 * pairwise: a 10,000-item `ports:` list took 3-7 s to validate, 20,000 took
 * 18 s (quadratic). At 1,000 the check takes milliseconds.
 */
export const MAX_LIST_ITEMS = 1_000;
/** Deeper than any compose file goes; keeps the recursive walk far from the stack limit. */
export const MAX_DEPTH = 64;

/** The file's content as plain values with variables substituted. */
export function materialise(file: SourceFile, ctx: MaterialiseContext): YamlValue {
  let raw: unknown;
  try {
    // maxAliasCount bounds alias expansion ("billion laughs").
    raw = file.doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    // yaml's toJS recurses: a file nested thousands deep overflows the stack there.
    const reason = err instanceof RangeError && /call stack/.test(err.message) ? `nested more than ${MAX_DEPTH} levels deep` : err instanceof Error ? err.message : String(err);
    throw errorAt(file, [], `invalid YAML: ${reason}`);
  }
  return walk(raw, [], file, ctx, { values: 0 });
}

function walk(value: unknown, path: DocPath, file: SourceFile, ctx: MaterialiseContext, seen: { values: number }): YamlValue {
  if (++seen.values > MAX_VALUES) throw errorAt(file, [], `the file expands to more than ${MAX_VALUES} values (through aliases?); a compose file is far smaller`);
  if (path.length > MAX_DEPTH) throw errorAt(file, path.slice(0, MAX_DEPTH), `nested more than ${MAX_DEPTH} levels deep`);
  if (typeof value === 'string') {
    try {
      return interpolate(value, ctx.lookup, (name) => ctx.onUnset(name, file, path));
    } catch (err) {
      if (err instanceof InterpolationError) throw errorAt(file, path, err.message);
      throw err;
    }
  }
  if (Array.isArray(value)) {
    if (value.length > MAX_LIST_ITEMS) throw errorAt(file, path, `a list of ${value.length} items; at most ${MAX_LIST_ITEMS} are accepted`);
    const out = value.map((item, i) => walk(item, [...path, i], file, ctx, seen));
    ctx.prov.tag(out, { file, path });
    return out;
  }
  if (isYamlMap(value)) {
    const out: YamlMap = {};
    for (const key of Object.keys(value)) put(out, key, walk(value[key], [...path, key], file, ctx, seen));
    ctx.prov.tag(out, { file, path });
    return out;
  }
  if (value instanceof Uint8Array) throw errorAt(file, path, 'a !!binary value has no place in a compose file; put the bytes in a file and use file:');
  // Numbers, booleans, null.
  return value as YamlValue;
}
