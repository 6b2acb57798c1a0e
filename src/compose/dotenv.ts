/**
 * The `.env` file beside the first compose file, in the format compose reads:
 *
 *   # comment
 *   KEY=value            unquoted: trimmed, ` #...` ends it, $VARS expanded
 *   export KEY=value     the shell's `export` is allowed
 *   KEY="a\nb $X"        double quotes: \n \t \r \\ \" \$ escapes, $VARS expanded, may span lines
 *   KEY='literal $X'     single quotes: taken as written, may span lines
 *   KEY                  no "=": the value comes from the process environment, if set there
 *
 * Variables expand from earlier lines of the file, then the process
 * environment (which also wins in the final result).
 */
import { interpolate, InterpolationError } from './interpolate.js';

/** Thrown with the 1-based line of the problem; the caller adds the file name. */
export class DotEnvError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

const KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', $: '$$' };

export function parseDotEnv(text: string, processEnv: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const vars: Record<string, string> = {};
  const lookup = (name: string): string | undefined => (Object.hasOwn(vars, name) ? vars[name] : processEnv[name]);
  let pos = 0;
  let line = 1;
  while (pos < text.length) {
    const eol = indexOrEnd(text, '\n', pos);
    const raw = text.slice(pos, eol).replace(/\r$/, '');
    const startLine = line;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) {
      pos = eol + 1;
      line++;
      continue;
    }
    const body = trimmed.replace(/^export\s+/, '');
    const eq = body.indexOf('=');
    if (eq < 0) {
      if (!KEY.test(body)) throw new DotEnvError(startLine, `"${body.slice(0, 40)}" is not KEY=VALUE`);
      const inherited = processEnv[body];
      if (inherited !== undefined) vars[body] = inherited;
      pos = eol + 1;
      line++;
      continue;
    }
    const key = body.slice(0, eq).trim();
    if (!KEY.test(key)) throw new DotEnvError(startLine, `"${key.slice(0, 40)}" is not a variable name`);
    // Where the value starts in `text`, so quoted values may run over several lines.
    const valueStart = pos + raw.indexOf(body) + eq + 1;
    let rest = valueStart;
    while (text[rest] === ' ' || text[rest] === '\t') rest++;
    const quote = text[rest];
    let value: string;
    if (quote === '"' || quote === "'") {
      const close = closingQuote(text, rest + 1, quote);
      if (close < 0) throw new DotEnvError(startLine, `${key}: the ${quote === '"' ? 'double' : 'single'} quote is not closed`);
      const inner = text.slice(rest + 1, close);
      value = quote === "'" ? inner : expand(inner.replace(/\\(.)/g, (m, c: string) => ESCAPES[c] ?? m), lookup, startLine);
      line += countNewlines(text, pos, close);
      const after = indexOrEnd(text, '\n', close);
      const trailing = text.slice(close + 1, after).trim();
      if (trailing !== '' && !trailing.startsWith('#')) throw new DotEnvError(line, `${key}: unexpected "${trailing.slice(0, 20)}" after the closing quote`);
      pos = after + 1;
      line++;
    } else {
      const unquoted = text.slice(rest, eol).replace(/\r$/, '');
      // A " #" starts a comment; a "#" glued to the value (a#b) is part of it.
      value = expand(unquoted.replace(/\s+#.*$/, '').trim(), lookup, startLine);
      pos = eol + 1;
      line++;
    }
    vars[key] = value;
  }
  return vars;
}

function expand(value: string, lookup: (name: string) => string | undefined, line: number): string {
  try {
    // Unset variables in .env become "" silently, as in compose.
    return interpolate(value, lookup, () => undefined);
  } catch (err) {
    if (err instanceof InterpolationError) throw new DotEnvError(line, err.message);
    throw err;
  }
}

function indexOrEnd(text: string, ch: string, from: number): number {
  const i = text.indexOf(ch, from);
  return i < 0 ? text.length : i;
}

function closingQuote(text: string, from: number, quote: string): number {
  for (let i = from; i < text.length; i++) {
    if (quote === '"' && text[i] === '\\') i++;
    else if (text[i] === quote) return i;
  }
  return -1;
}

function countNewlines(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) if (text[i] === '\n') n++;
  return n;
}
