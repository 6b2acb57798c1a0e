/**
 * Grants: which secret a service gets, under which file name, owner and mode.
 *
 * Everything about a grant is checked here, when the grant is made, so that a
 * bad target ("../etc/passwd", "a/b", a duplicate) is refused at
 * `hush service create` / deploy time and never reaches the FUSE layer.
 */
import { HushError } from '../errors/index.js';
import { assertValidName } from '../rules/index.js';

export interface Grant {
  /** Secret name. */
  source: string;
  /** File name under /run/secrets. */
  target: string;
  uid: number;
  gid: number;
  mode: number;
  /** The source is a template (templates.ts) rendered with the service's other secrets; absent for a plain file. */
  template?: boolean;
}

/** Docker's defaults for a secret file: root-owned, world-readable, not writable. */
export const DEFAULT_UID = 0;
export const DEFAULT_GID = 0;
export const DEFAULT_MODE = 0o444;

/** 2^32-1 is (uid_t)-1, which chown(2) reads as "leave unchanged", so it is never a real owner. */
export const MAX_ID = 2 ** 32 - 2;
/** Permission bits only: setuid/setgid/sticky make no sense on a read-only secret file. */
export const MAX_MODE = 0o777;
/** NAME_MAX on Linux, counted in bytes, not characters. */
export const MAX_TARGET_BYTES = 255;

const GRANT_FIELDS = new Set(['source', 'target', 'uid', 'gid', 'mode', 'template']);
const DECIMAL = /^[0-9]+$/;
const OCTAL = /^(?:0o)?[0-7]+$/i;

const utf8 = new TextEncoder();

/**
 * Parses the CLI form `SRC[,target=T,uid=U,gid=G,mode=M]`, or docker's
 * `source=SRC,...` (also `src=`). Mode is octal text ("0400", "400", "0o400"),
 * as people write it for chmod.
 */
export function parseGrantSpec(spec: string): Grant {
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new HushError('bad_request', 'empty --secret: use --secret NAME[,target=FILE,uid=N,gid=N,mode=0444]');
  }
  const seen = new Set<string>();
  const raw: Record<string, string> = {};
  const fields = spec.split(',').map((f) => f.trim());
  fields.forEach((field, i) => {
    const eq = field.indexOf('=');
    let key: string;
    let value: string;
    if (eq < 0) {
      // A bare word is the secret name, but only in first place, as in docker.
      if (i !== 0 || field === '') {
        throw new HushError('bad_request', `--secret "${spec}": field "${field}" is not KEY=VALUE; use NAME[,target=FILE,uid=N,gid=N,mode=0444]`);
      }
      key = 'source';
      value = field;
    } else {
      key = field.slice(0, eq).trim().toLowerCase();
      value = field.slice(eq + 1).trim();
      if (key === 'src') key = 'source';
    }
    if (!GRANT_FIELDS.has(key)) {
      throw new HushError('bad_request', `--secret "${spec}": unknown option "${key}"; the options are source, target, uid, gid, mode, template`);
    }
    if (seen.has(key)) throw new HushError('bad_request', `--secret "${spec}": ${key} is given twice`);
    seen.add(key);
    raw[key] = value;
  });

  const source = raw.source;
  if (source === undefined) throw new HushError('bad_request', `--secret "${spec}": no secret name; start with NAME or give source=NAME`);
  const where = `--secret "${spec}"`;
  return checkGrant(
    {
      source,
      target: raw.target ?? source,
      uid: raw.uid === undefined ? DEFAULT_UID : idFromText(raw.uid, 'uid', where),
      gid: raw.gid === undefined ? DEFAULT_GID : idFromText(raw.gid, 'gid', where),
      mode: raw.mode === undefined ? DEFAULT_MODE : modeFromText(raw.mode, where),
      ...(templateFromText(raw.template, where) ? { template: true } : {}),
    },
    where,
  );
}

function templateFromText(value: string | undefined, where: string): boolean {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw new HushError('bad_request', `${where}: template must be true or false, not "${value}"`);
}

/**
 * Validates the REST / compose form: objects with `source` and optionally
 * `target`, `uid`, `gid`, `mode` (missing ones take Docker's defaults).
 * Also refuses two grants that would land on the same file.
 *
 * uid/gid may be numbers or decimal strings, because compose writes them as
 * strings; mode may be a number or octal text (the same reading as the CLI).
 */
export function validateGrants(grants: unknown[]): Grant[] {
  if (!Array.isArray(grants)) throw new HushError('bad_request', 'grants must be a list of {source, target?, uid?, gid?, mode?}');
  const out: Grant[] = [];
  const byTarget = new Map<string, { index: number; grant: Grant }>();
  grants.forEach((input, i) => {
    const grant = validateGrant(input, i);
    const earlier = byTarget.get(grant.target);
    if (earlier !== undefined) {
      throw new HushError(
        'bad_request',
        `grant #${i + 1} (source "${grant.source}"): target "${grant.target}" is already used by grant #${earlier.index + 1} (source "${earlier.grant.source}"); give one of them another target`,
      );
    }
    byTarget.set(grant.target, { index: i, grant });
    out.push(grant);
  });
  return out;
}

function validateGrant(input: unknown, index: number): Grant {
  let where = `grant #${index + 1}`;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new HushError('bad_request', `${where} must be an object {source, target?, uid?, gid?, mode?}`);
  }
  const obj = input as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!GRANT_FIELDS.has(key)) {
      throw new HushError('unknown_field', `${where}: unknown field "${key}"; the fields are source, target, uid, gid, mode, template`);
    }
  }
  const source = obj.source;
  if (typeof source !== 'string') throw new HushError('bad_request', `${where}: source (the secret name) is required and must be a string`);
  where = `${where} (source "${source}")`;
  if (obj.target !== undefined && typeof obj.target !== 'string') throw new HushError('bad_request', `${where}: target must be a string`);
  return checkGrant(
    {
      source,
      target: (obj.target as string | undefined) ?? source,
      uid: obj.uid === undefined ? DEFAULT_UID : idFromValue(obj.uid, 'uid', where),
      gid: obj.gid === undefined ? DEFAULT_GID : idFromValue(obj.gid, 'gid', where),
      mode: obj.mode === undefined ? DEFAULT_MODE : modeFromValue(obj.mode, where),
      ...(templateFromValue(obj.template, where) ? { template: true } : {}),
    },
    where,
  );
}

function templateFromValue(value: unknown, where: string): boolean {
  if (value === undefined || value === false) return false;
  if (value === true) return true;
  throw new HushError('bad_request', `${where}: template must be true or false`);
}

/** The checks both forms share; `where` names the grant in messages. */
function checkGrant(grant: Grant, where: string): Grant {
  try {
    assertValidName(grant.source, 'secret');
  } catch (err) {
    if (err instanceof HushError) throw new HushError(err.code, `${where}: ${err.message}`);
    throw err;
  }
  assertValidTarget(grant.target, where);
  return grant;
}

/**
 * A target is one file name inside the container's /run/secrets mount: never a
 * path, so no grant can reach outside the mount or shadow a directory.
 */
export function assertValidTarget(target: string, where = 'grant'): void {
  const fix = 'give a plain file name such as target=db_password';
  if (target === '') throw new HushError('bad_request', `${where}: target is empty; ${fix}`);
  if (target.includes('\0')) throw new HushError('bad_request', `${where}: target contains a NUL byte; ${fix}`);
  if (target.includes('/')) throw new HushError('bad_request', `${where}: target "${target}" contains "/"; targets are file names directly under /run/secrets, ${fix}`);
  if (target === '.' || target === '..') throw new HushError('bad_request', `${where}: target "${target}" is not a file name; ${fix}`);
  const bytes = utf8.encode(target).length;
  if (bytes > MAX_TARGET_BYTES) {
    throw new HushError('bad_request', `${where}: target "${target.slice(0, 40)}..." is ${bytes} bytes; the limit is ${MAX_TARGET_BYTES}`);
  }
}

function idFromText(text: string, what: 'uid' | 'gid', where: string): number {
  // Decimal digits only: "1e3", "0x10", "-1" and " 5" are typos, not ids.
  if (!DECIMAL.test(text)) throw new HushError('bad_request', `${where}: ${what} "${text}" is not a number; give 0..${MAX_ID}`);
  return checkId(Number(text), what, where);
}

function idFromValue(value: unknown, what: 'uid' | 'gid', where: string): number {
  if (typeof value === 'string') return idFromText(value, what, where);
  if (typeof value !== 'number') throw new HushError('bad_request', `${where}: ${what} must be an integer 0..${MAX_ID}`);
  return checkId(value, what, where);
}

function checkId(n: number, what: 'uid' | 'gid', where: string): number {
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_ID) {
    throw new HushError('bad_request', `${where}: ${what} ${n} is out of range; give an integer 0..${MAX_ID}`);
  }
  return n;
}

function modeFromText(text: string, where: string): number {
  if (!OCTAL.test(text)) throw new HushError('bad_request', `${where}: mode "${text}" is not octal; write it like chmod, e.g. mode=0440`);
  return checkMode(parseInt(text.replace(/^0o/i, ''), 8), where, text);
}

function modeFromValue(value: unknown, where: string): number {
  if (typeof value === 'string') return modeFromText(value, where);
  if (typeof value !== 'number') throw new HushError('bad_request', `${where}: mode must be an integer 0..0o777 (e.g. 256 for 0400)`);
  return checkMode(value, where, String(value));
}

function checkMode(n: number, where: string, shown: string): number {
  if (!Number.isInteger(n) || n < 0 || n > MAX_MODE) {
    throw new HushError('bad_request', `${where}: mode ${shown} is out of range; give permission bits 0000..0777 (no setuid/setgid/sticky)`);
  }
  return n;
}
