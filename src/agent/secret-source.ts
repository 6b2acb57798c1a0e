/**
 * The files one service's containers see under /run/secrets, built on demand
 * from the service's grants and the cache, in the shape the FUSE layer
 * consumes (SecretSource, declared once in src/tmpfs-mount/types.ts; a type
 * import loads none of the mount code).
 *
 * Every lookup reads the current grants and versions, so the view swaps per
 * version by itself; `open()` pins the version it found, so an open file
 * keeps the content it opened (DESIGN, data flow step 5).
 */
import type { Grant } from '../acl/index.js';
import type { SecretFile, SecretSource } from '../tmpfs-mount/index.js';
import type { SecretCache } from './cache.js';

export function sourceForService(cache: SecretCache, service: string): SecretSource {
  return {
    list: () => (cache.grants(service) ?? []).map((grant) => fileFor(cache, service, grant)).filter((f): f is SecretFile => f !== undefined),
    lookup: (name) => {
      const grant = cache.grant(service, name);
      return grant && fileFor(cache, service, grant);
    },
    onChange: (listener) => cache.onChange(listener),
  };
}

function fileFor(cache: SecretCache, service: string, grant: Grant): SecretFile | undefined {
  // A template grant's file is its current rendering (templates.ts), a version of its own.
  const version = cache.fileVersion(service, grant);
  // A grant whose secret has not arrived (or was just removed) shows no file rather than an empty one.
  if (!version) return undefined;
  return {
    name: grant.target,
    uid: grant.uid,
    gid: grant.gid,
    mode: grant.mode,
    mtime: version.mtime,
    size: version.size,
    source: version.name,
    version: version.version,
    open: () => ({ size: version.size, read: (position, length) => version.read(position, length) }),
  };
}
