/**
 * Where each value of the merged model came from (file and path in that
 * file), so a problem found after merging several files still names the file
 * and line the user must edit.
 *
 * Containers (objects, arrays) are tagged; a scalar is found through its
 * container and key. A container built by merging records, key by key,
 * where each child came from.
 */
import type { DocPath, PathSegment } from './errors.js';
import { errorAt, type SourceFile } from './source.js';
import type { ComposeError } from './errors.js';

export interface Origin {
  file: SourceFile;
  path: DocPath;
}

export class Provenance {
  private readonly containers = new WeakMap<object, Origin>();
  private readonly children = new WeakMap<object, Map<PathSegment, Origin>>();

  tag(container: object, origin: Origin): void {
    this.containers.set(container, origin);
  }

  /** Records that `container[key]` came from `origin` (merged containers). */
  tagChild(container: object, key: PathSegment, origin: Origin): void {
    let map = this.children.get(container);
    if (map === undefined) this.children.set(container, (map = new Map()));
    map.set(key, origin);
  }

  /** Origin of the container itself, or of its child `key`. */
  of(container: object, key?: PathSegment): Origin {
    if (key !== undefined) {
      const child = this.children.get(container)?.get(key);
      if (child !== undefined) return child;
    }
    const own = this.containers.get(container);
    if (own === undefined) throw new Error('compose: a value without provenance (a bug in the loader)');
    return key === undefined ? own : { file: own.file, path: [...own.path, key] };
  }

  /** A ComposeError pointing at `container[key]` (or the container). */
  error(container: object, key: PathSegment | undefined, reason: string): ComposeError {
    const origin = this.of(container, key);
    return errorAt(origin.file, origin.path, reason);
  }
}
