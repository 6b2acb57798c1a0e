/**
 * One compose file as parsed YAML: its document (kept for line numbers and
 * the text of scalars as written), and the paths carrying compose's merge
 * tags `!reset` / `!override`.
 */
import { dirname } from 'node:path';
import { isAlias, isCollection, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node, type ScalarTag } from 'yaml';
import { ComposeError, formatPath, type DocPath, type PathSegment } from './errors.js';

export type MergeTag = 'reset' | 'override';

export interface SourceFile {
  /** As the user named it: what messages show. */
  name: string;
  /** Absolute path. */
  path: string;
  dir: string;
  doc: Document.Parsed;
  lines: LineCounter;
  /** `pathKey(path)` → merge tag written on the value at that path. */
  tags: Map<string, MergeTag>;
}

/**
 * YAML 1.1 octal: `0400` is 256, as Docker's compose loader (Go's yaml.v3,
 * strconv base 0) reads it. The yaml package follows YAML 1.2, where `0400`
 * is decimal 400: a file mode written the classic way would silently become
 * 0620. Registered before the core tags so it wins for these strings only;
 * `0o400` stays the core schema's octal and `400` stays decimal.
 */
const YAML11_OCTAL: ScalarTag = {
  // Parsing only: never chosen to write a number back out.
  identify: () => false,
  default: true,
  tag: 'tag:yaml.org,2002:int',
  format: 'OCT',
  test: /^0[0-7]+$/,
  resolve: (text) => parseInt(text, 8),
};

const MERGE_TAGS: Record<string, MergeTag> = { '!reset': 'reset', '!override': 'override' };

export function pathKey(path: DocPath): string {
  return JSON.stringify(path);
}

/** Parses one file; a YAML error becomes a one-line ComposeError with its line. */
export function parseSource(name: string, path: string, text: string): SourceFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter: lines,
    prettyErrors: false,
    // Compose files lean on `<<: *defaults` (YAML 1.1 merge keys); compose-go accepts them.
    merge: true,
    uniqueKeys: true,
    customTags: (tags) => [YAML11_OCTAL, ...tags],
  });
  const err = doc.errors[0];
  if (err !== undefined) {
    // yaml reports an unclosed quote where the file ends; the user needs the line where it opens.
    // Nothing between the two can be that quote character, or it would have closed the string.
    const quote = err.code === 'MISSING_CHAR' ? /Missing closing (["'])quote/.exec(err.message)?.[1] : undefined;
    const opened = quote === undefined ? -1 : text.lastIndexOf(quote, err.pos[0] - 1);
    if (opened >= 0) {
      throw new ComposeError(`invalid YAML: the ${quote} opened here is never closed`, { file: name, line: lines.linePos(opened).line });
    }
    // Keep the first line only: the rest is yaml's context snippet.
    throw new ComposeError(`invalid YAML: ${err.message.split('\n')[0]}`, { file: name, line: lines.linePos(err.pos[0]).line });
  }
  refuseCollectionKeys(name, doc, lines);
  return { name, path, dir: dirname(path), doc, lines, tags: collectMergeTags(doc) };
}

/**
 * `? [a, b]: x` and `{a: 1}: x` are valid YAML, but a compose key is a name:
 * yaml would turn such a key into its text and print a warning on stderr.
 * The random-input suite found these (test/unit/compose-property.test.ts).
 */
function refuseCollectionKeys(name: string, doc: Document.Parsed, lines: LineCounter): void {
  visit(doc, {
    Pair(_key, pair) {
      const key = isAlias(pair.key) ? pair.key.resolve(doc) : pair.key;
      // A tagged scalar (`!!binary`, `!!timestamp`) is an object too, and is stringified the same way.
      const scalarObject = isScalar(key) && typeof key.value === 'object' && key.value !== null;
      if (!isCollection(key) && !scalarObject) return;
      const at = (pair.key as { range?: [number, number, number] }).range?.[0] ?? 0;
      throw new ComposeError('a key must be a name, not a list, a mapping or a tagged value', { file: name, line: lines.linePos(at).line });
    },
  });
}

function collectMergeTags(doc: Document.Parsed): Map<string, MergeTag> {
  const tags = new Map<string, MergeTag>();
  visit(doc, {
    Node(key, node, ancestors) {
      if (key === 'key' || node.tag === undefined) return;
      const tag = MERGE_TAGS[node.tag];
      if (tag === undefined) return;
      tags.set(pathKey(jsPath([...ancestors, node])), tag);
    },
  });
  return tags;
}

/** The JS path of the last node in a chain of YAML ancestors. */
function jsPath(chain: readonly unknown[]): PathSegment[] {
  const out: PathSegment[] = [];
  chain.forEach((item, i) => {
    if (isPair(item)) out.push(String(isScalar(item.key) ? item.key.value : item.key));
    else if (isSeq(item)) out.push(item.items.indexOf(chain[i + 1] as never));
  });
  return out;
}

/** Finds the pair for `key` in a map, looking through `<<` merge keys as the value would. */
function findPair(map: unknown, key: PathSegment, doc: Document.Parsed, depth = 0): { key: Node | null; value: unknown } | undefined {
  if (isAlias(map)) map = map.resolve(doc);
  if (!isMap(map) || depth > 16) return undefined;
  const own = map.items.find((p) => isScalar(p.key) && typeof p.key.value !== 'symbol' && String(p.key.value) === String(key));
  if (own !== undefined) return own as { key: Node | null; value: unknown };
  for (const p of map.items) {
    // With merge keys on, yaml gives `<<` the value Symbol(<<); its source stays "<<".
    if (!isScalar(p.key) || p.key.source !== '<<') continue;
    const sources = isSeq(p.value) ? p.value.items : [p.value];
    for (const src of sources) {
      const found = findPair(src, key, doc, depth + 1);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** The YAML node at `path` (or the deepest one found on the way) and the offset to report. */
function locate(file: SourceFile, path: DocPath): { node: unknown; offset: number; complete: boolean } {
  let node: unknown = file.doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(file.doc);
    if (isMap(node)) {
      const pair = findPair(node, seg, file.doc);
      if (pair === undefined) return { node, offset, complete: false };
      // The key's line: that is where the user reads "mode:" or "imagee:".
      offset = rangeStart(pair.key) ?? rangeStart(pair.value) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
      node = node.items[seg];
      offset = rangeStart(node) ?? offset;
    } else {
      return { node, offset, complete: false };
    }
  }
  return { node, offset, complete: true };
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range?.[0];
}

/** 1-based line of the value at `path`; the nearest enclosing line when the path crosses an alias or is missing. */
export function lineOf(file: SourceFile, path: DocPath): number {
  return file.lines.linePos(locate(file, path).offset).line;
}

/** The scalar's text as written (`0800`, `"0400"`), to show in messages instead of what YAML made of it. */
export function sourceText(file: SourceFile, path: DocPath): string | undefined {
  const found = locate(file, path);
  if (!found.complete) return undefined;
  const node = isAlias(found.node) ? found.node.resolve(file.doc) : found.node;
  return isScalar(node) && typeof node.source === 'string' ? node.source : undefined;
}

/** A ComposeError located at `path` in `file`. */
export function errorAt(file: SourceFile, path: DocPath, reason: string): ComposeError {
  return new ComposeError(reason, { file: file.name, line: lineOf(file, path), path: formatPath(path) });
}
