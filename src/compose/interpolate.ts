/**
 * Compose's variable interpolation, all of its forms:
 *   $VAR  ${VAR}  ${VAR:-default}  ${VAR-default}  ${VAR:?error}  ${VAR?error}
 *   ${VAR:+alt}  ${VAR+alt}  $$ (a literal $)
 * With ":" an empty value counts as unset. Defaults, errors and alternatives
 * may themselves contain variables (`${A:-${B:-x}}`). A `$` not followed by a
 * name or `{` stays as written, as in compose.
 */

export type Lookup = (name: string) => string | undefined;

/** Thrown for a bad template or a required variable; the caller adds file, path and line. */
export class InterpolationError extends Error {}

const NAME_START = /[_a-zA-Z]/;
const NAME_REST = /[_a-zA-Z0-9]/;
const BRACED = /^([_a-zA-Z][_a-zA-Z0-9]*)(?:(:?[-?+])([\s\S]*))?$/;
/**
 * `${A:-${B:-...}}` nests by recursion and rescans the rest of the text at
 * each level: 20,000 levels overflowed the stack after 1.7 s. Real files nest two or three.
 */
const MAX_NESTING = 32;
/** Messages quote the text; a multi-megabyte value must not become a multi-megabyte message. */
const QUOTE_LIMIT = 80;

function quoted(text: string): string {
  return JSON.stringify(text.length <= QUOTE_LIMIT ? text : `${text.slice(0, QUOTE_LIMIT)}...`);
}

/**
 * Substitutes variables in `text`. `onUnset` is told about each variable that
 * was unset and had no default, which compose replaces with "" and warns about.
 */
export function interpolate(text: string, lookup: Lookup, onUnset: (name: string) => void, depth = 0): string {
  if (!text.includes('$')) return text;
  if (depth > MAX_NESTING) throw new InterpolationError(`invalid interpolation format in ${quoted(text)}: variables nested more than ${MAX_NESTING} deep`);
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch !== '$') {
      out += ch;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '{') {
      const end = closingBrace(text, i + 2);
      if (end < 0) throw new InterpolationError(`invalid interpolation format in ${quoted(text)}: "\${" without its "}"; write $$ for a literal $`);
      out += braced(text.slice(i + 2, end), text, lookup, onUnset, depth);
      i = end + 1;
    } else if (next !== undefined && NAME_START.test(next)) {
      let j = i + 2;
      while (j < text.length && NAME_REST.test(text[j])) j++;
      const name = text.slice(i + 1, j);
      const value = lookup(name);
      if (value === undefined) onUnset(name);
      out += value ?? '';
      i = j;
    } else {
      out += '$';
      i++;
    }
  }
  return out;
}

/** Index of the `}` closing a `${` whose body starts at `from`, counting nested `${...}`; -1 if none. */
function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let j = from; j < text.length; j++) {
    if (text[j] === '$' && text[j + 1] === '$') j++;
    else if (text[j] === '$' && text[j + 1] === '{') {
      depth++;
      j++;
    } else if (text[j] === '}' && --depth === 0) return j;
  }
  return -1;
}

function braced(body: string, whole: string, lookup: Lookup, onUnset: (name: string) => void, depth: number): string {
  const m = BRACED.exec(body);
  if (m === null) {
    throw new InterpolationError(`invalid interpolation format in ${quoted(whole)}: ${quoted(`\${${body}}`)} is not one of compose's forms; write $$ for a literal $`);
  }
  const [, name, op, arg = ''] = m;
  const value = lookup(name);
  const unset = value === undefined;
  const empty = unset || value === '';
  // The argument is expanded only when used, as in the shell: an unused
  // `${A:-${B:?}}` must not fail.
  const expand = (): string => interpolate(arg, lookup, onUnset, depth + 1);
  switch (op) {
    case undefined:
      if (unset) onUnset(name);
      return value ?? '';
    case ':-':
      return empty ? expand() : value;
    case '-':
      return unset ? expand() : value;
    case ':?':
    case '?': {
      if (op === ':?' ? empty : unset) {
        const why = expand();
        throw new InterpolationError(`required variable ${name} is missing a value${why === '' ? '' : `: ${why}`}`);
      }
      return value as string;
    }
    case ':+':
      return empty ? '' : expand();
    case '+':
      return unset ? '' : expand();
    default:
      throw new InterpolationError(`invalid interpolation format in ${quoted(whole)}`);
  }
}
