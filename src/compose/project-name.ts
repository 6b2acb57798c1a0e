/**
 * The project name, decided as docker compose documents it
 * (docs.docker.com/compose/how-tos/project-name): `-p`, then
 * COMPOSE_PROJECT_NAME (process environment or .env), then the top-level
 * `name:` (the last file that has one), then the first file's directory name.
 *
 * Names given explicitly must already be valid and are refused otherwise, as
 * compose refuses `-p MyApp`; a directory name is normalised the way compose
 * normalises it (lowercase, other characters dropped, leading "_"/"-" trimmed).
 */
import { basename } from 'node:path';
import { ComposeError } from './errors.js';

const VALID = /^[a-z0-9][a-z0-9_-]*$/;

export interface NameSources {
  flag?: string;
  env?: string;
  /** From `name:`, already interpolated, with where it was written. */
  fromFile?: { name: string; file: string; line: number };
  /** Directory of the first compose file. */
  dir: string;
}

export function normaliseProjectName(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '')
    .replace(/^[_-]+/, '');
}

export function decideProjectName(src: NameSources): string {
  if (src.flag !== undefined) return checked(src.flag, '-p', undefined);
  if (src.env !== undefined && src.env !== '') return checked(src.env, 'COMPOSE_PROJECT_NAME', undefined);
  if (src.fromFile !== undefined && src.fromFile.name !== '') return checked(src.fromFile.name, 'name:', src.fromFile);
  const dirName = basename(src.dir);
  const name = normaliseProjectName(dirName);
  if (name === '') {
    throw new ComposeError(`cannot derive a project name from the directory "${dirName}"; give one with -p NAME or name: in the compose file`);
  }
  return name;
}

function checked(name: string, from: string, where: { file: string; line: number } | undefined): string {
  if (VALID.test(name)) return name;
  const suggestion = normaliseProjectName(name);
  const reason =
    `invalid project name "${name}" (from ${from}): use lowercase letters, digits, "_" and "-", starting with a letter or digit` +
    (suggestion !== '' ? `, e.g. "${suggestion}"` : '');
  throw new ComposeError(reason, where === undefined ? undefined : { file: where.file, line: where.line, path: 'name' });
}
