/**
 * How a compose problem is reported: one line, `FILE:LINE: PATH: what is wrong`,
 * the way compilers report, so an editor can jump to it and the user can act
 * on it without reading a stack of schema output.
 */
import { HushError } from '../errors/index.js';

/** A path inside a compose document: mapping keys and sequence indexes. */
export type PathSegment = string | number;
export type DocPath = readonly PathSegment[];

export interface ComposeLocation {
  /** The file as the user named it (e.g. `-c deploy/compose.yaml`). */
  file: string;
  /** 1-based line; absent when the problem has no line (a file that cannot be read). */
  line?: number;
  /** Dotted path such as `services.api.secrets[1].mode`; absent for whole-file problems. */
  path?: string;
}

export class ComposeError extends HushError {
  /** Where the problem is, for callers that present it differently (the CLI prints `message`). */
  readonly location: ComposeLocation | undefined;
  /** The message without its location prefix. */
  readonly reason: string;

  constructor(reason: string, location?: ComposeLocation) {
    super('bad_request', location === undefined ? reason : `${formatLocation(location)}: ${reason}`);
    this.name = 'ComposeError';
    this.location = location;
    this.reason = reason;
  }
}

function formatLocation(loc: ComposeLocation): string {
  const head = loc.line === undefined ? loc.file : `${loc.file}:${loc.line}`;
  return loc.path === undefined || loc.path === '' ? head : `${head}: ${loc.path}`;
}

const PLAIN_KEY = /^[A-Za-z0-9_-]+$/;

/** `['services', 'api', 'secrets', 1, 'mode']` → `services.api.secrets[1].mode`; odd keys are quoted (`services["my.app"]`). */
export function formatPath(path: DocPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (PLAIN_KEY.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}
