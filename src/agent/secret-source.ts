/**
 * The files one service's containers see under /run/secrets, built on demand
 * from the service's grants and the cache. The FUSE layer (src/tmpfs-mount)
 * consumes this shape; it is declared here too so the agent does not depend
 * on the mount code, and it matches src/tmpfs-mount/types.ts structurally.
 *
 * Every lookup reads the current grants and versions, so the view swaps per
 * version by itself; `open()` pins the version it found, so an open file
 * keeps the content it opened (DESIGN, data flow step 5).
 */
import type { Grant } from '../acl/index.js';
import type { SecretCache } from './cache.js';

export interface OpenSecret {
  size: number;
  /** A fresh buffer; the caller should zero it after copying it on. */
  read(position: number, length: number): Buffer;
}

export interface SecretFile {
  /** The grant's target: the file name under /run/secrets. */
  name: string;
  uid: number;
  gid: number;
  mode: number;
  mtime: Date;
  size: number;
  /** The secret's name and version, for logs and tests: never the value. */
  source: string;
  version: number;
  open(): OpenSecret;
}

export interface SecretSource {
  list(): SecretFile[];
  lookup(name: string): SecretFile | undefined;
  /** Called after every change the cache applies (a new version, a grant added or removed); returns the way to stop. */
  onChange(listener: () => void): () => void;
}

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
