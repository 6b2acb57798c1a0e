/**
 * Templates: one file rendered from several secrets. The template text is
 * itself a secret; its actions are exactly
 *
 *   {{ secret "NAME" }}   the whole value of secret NAME
 *   {{ "TEXT" }}          TEXT as written (so a file can hold a literal "{{")
 *
 * a subset of Go's text/template (what Consul Template and Vault Agent use),
 * with no logic, no functions, no code: a value is pasted verbatim. Anything
 * else between "{{" and "}}" is an error. Which secrets a template may
 * reference is acl's rule: only secrets granted to the same service.
 * Error messages give a line and column, never template text: the template
 * is a secret too.
 */
import { HushError } from '../errors/index.js';
import { assertValidName } from '../rules/index.js';
import type { Grant } from './grants.js';

export type TemplatePart = { text: string } | { secret: string };

// Inside an action: optional spaces, an optional `secret` keyword, a double-quoted string (\" and \\ escapes), optional spaces.
const ACTION = /^\s*(?:(secret)\s+)?"((?:[^"\\]|\\["\\])*)"\s*$/;

export function parseTemplate(text: string, name = 'template'): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let at = 0;
  for (;;) {
    const open = text.indexOf('{{', at);
    if (open < 0) break;
    if (open > at) parts.push({ text: text.slice(at, open) });
    const close = text.indexOf('}}', open + 2);
    if (close < 0) throw templateError(name, text, open, 'an action opened with "{{" is never closed with "}}"');
    const match = ACTION.exec(text.slice(open + 2, close));
    if (!match) throw templateError(name, text, open, 'the only actions are {{ secret "NAME" }} and {{ "TEXT" }}');
    const value = match[2]!.replace(/\\(["\\])/g, '$1');
    if (match[1]) {
      try {
        assertValidName(value, 'secret');
      } catch (err) {
        throw templateError(name, text, open, (err as Error).message);
      }
      parts.push({ secret: value });
    } else {
      parts.push({ text: value });
    }
    at = close + 2;
  }
  if (at < text.length) parts.push({ text: text.slice(at) });
  return parts;
}

/** The secrets a template references, each once, in order of first use. */
export function templateReferences(text: string, name?: string): string[] {
  return [...new Set(parseTemplate(text, name).flatMap((p) => ('secret' in p ? [p.secret] : [])))];
}

/**
 * Refuses a template grant that references a secret the service is not
 * granted: a template must not become a way to read what the service was
 * never given. (The template's own secret may not reference itself either:
 * it would paste the template text, which is pointless and confusing.)
 */
export function assertTemplateInputsGranted(service: string, template: Grant, references: readonly string[], grants: readonly Grant[]): void {
  const granted = new Set(grants.filter((g) => !g.template).map((g) => g.source));
  const missing = references.filter((r) => !granted.has(r));
  if (missing.length > 0) {
    throw new HushError(
      'bad_request',
      `template "${template.source}" (target ${template.target}) of service "${service}" references ${missing.map((m) => `"${m}"`).join(', ')}, not granted to the service as a file: ` +
        'every secret a template uses must be granted to the same service (add --secret NAME, with a mode that suits)',
    );
  }
}

function templateError(name: string, text: string, offset: number, why: string): HushError {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return new HushError('bad_request', `template "${name}", line ${line}, column ${column}: ${why}`);
}
