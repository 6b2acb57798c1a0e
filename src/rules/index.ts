/** Rules for what may be stored, shared by every entry point (REST, Docker API, compose, CLI). Pure, no I/O: cheap to import from the CLI. */
import { HushError } from '../errors/index.js';

/** Docker's rule for object names. */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
export const MAX_NAME_LENGTH = 64;
export const DEFAULT_MAX_VALUE_BYTES = 500 * 1024;
const MAX_LABELS = 64;
const MAX_LABEL_BYTES = 4096;
/** Container ids as Docker and OCI runtimes make them (64 hex) or as people name them; never a path. */
export const CONTAINER_ID_PATTERN = '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$';
const CONTAINER_ID = new RegExp(CONTAINER_ID_PATTERN);
/** RFC 1123 host names (and what `hostname` prints): at most 253 characters, no spaces or slashes. */
const HOSTNAME = /^[a-zA-Z0-9_]([a-zA-Z0-9_.-]{0,252})$/;

export function assertValidName(name: unknown, what = 'secret'): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) throw new HushError('invalid_name', `${what} name is required`);
  if (name.length > MAX_NAME_LENGTH) throw new HushError('invalid_name', `${what} name "${name.slice(0, 80)}" is longer than ${MAX_NAME_LENGTH} characters`);
  if (!NAME.test(name)) {
    throw new HushError('invalid_name', `invalid ${what} name "${name}": use letters, digits, "_", "." and "-", starting with a letter or digit`);
  }
}

export function assertValidValue(data: Uint8Array, maxValueBytes: number): void {
  if (data.length === 0) throw new HushError('bad_request', 'secret value is empty: give at least one byte');
  if (data.length > maxValueBytes) {
    throw new HushError('too_large', `secret value is ${data.length} bytes; the limit is ${maxValueBytes} bytes (${Math.floor(maxValueBytes / 1024)} KiB)`);
  }
}

export function assertValidLabels(labels: Record<string, string>): void {
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) throw new HushError('bad_request', `too many labels (${entries.length}); the limit is ${MAX_LABELS}`);
  for (const [key, value] of entries) {
    if (key.length === 0) throw new HushError('bad_request', 'label keys must not be empty');
    if (typeof value !== 'string') throw new HushError('bad_request', `label "${key}" must be a string`);
    if (key.length + value.length > MAX_LABEL_BYTES) throw new HushError('bad_request', `label "${key.slice(0, 80)}" is too long`);
  }
}

export {
  assertAdminCertLifetime,
  assertValidCertName,
  DEFAULT_ADMIN_CERT_SECONDS,
  parseDuration,
} from './admin-certs.js';

export function assertValidContainerId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !CONTAINER_ID.test(id)) {
    throw new HushError('bad_request', `invalid container id "${String(id).slice(0, 80)}": use 1 to 128 letters, digits, "_", "." or "-", starting with a letter or digit`);
  }
}

export function assertValidHostname(hostname: unknown): asserts hostname is string {
  if (typeof hostname !== 'string' || !HOSTNAME.test(hostname)) {
    throw new HushError('bad_request', `invalid hostname "${String(hostname).slice(0, 80)}": use up to 253 letters, digits, "_", "." and "-"`);
  }
}

/** Compose's rule for project names (docker compose refuses `-p MyApp`); a project's objects carry it as a label. */
const PROJECT = /^[a-z0-9][a-z0-9_-]*$/;

export function assertValidProjectName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) throw new HushError('invalid_name', 'project name is required');
  if (name.length > MAX_NAME_LENGTH) throw new HushError('invalid_name', `project name "${name.slice(0, 80)}" is longer than ${MAX_NAME_LENGTH} characters`);
  if (!PROJECT.test(name)) {
    throw new HushError('invalid_name', `invalid project name "${name}": use lowercase letters, digits, "_" and "-", starting with a letter or digit`);
  }
}
