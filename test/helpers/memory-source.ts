/**
 * An in-memory SecretSource for the FUSE tests and the bench: every set() is
 * a new version (a strictly later mtime and the next version number) and
 * tells the mount at once, as the agent's cache does.
 */
import type { OpenedVersion, SecretFile, SecretSource } from '../../src/tmpfs-mount/index.js';

export interface Grant {
  uid?: number;
  gid?: number;
  mode?: number;
}

export class MemorySource implements SecretSource {
  private readonly files = new Map<string, SecretFile>();
  private readonly listeners = new Set<() => void>();
  private lastMtime = 0;
  private lastVersion = 0;

  set(name: string, value: Buffer | string, grant: Grant = {}): void {
    this.put(name, value, grant);
    this.changed();
  }

  /** Many new versions in one change (one notification to the mount). */
  setAll(entries: Array<[name: string, value: Buffer | string]>): void {
    for (const [name, value] of entries) this.put(name, value, {});
    this.changed();
  }

  private put(name: string, value: Buffer | string, grant: Grant): void {
    const bytes = Buffer.from(value);
    this.lastMtime = Math.max(Date.now(), this.lastMtime + 1);
    const mtime = new Date(this.lastMtime);
    this.files.set(name, {
      name,
      uid: grant.uid ?? 0,
      gid: grant.gid ?? 0,
      mode: grant.mode ?? 0o444,
      mtime,
      size: bytes.length,
      source: name,
      version: ++this.lastVersion,
      open: (): OpenedVersion => ({
        size: bytes.length,
        read: (position, length) => Buffer.from(bytes.subarray(position, position + length)),
      }),
    });
  }

  remove(name: string): void {
    this.files.delete(name);
    this.changed();
  }

  list(): SecretFile[] {
    return [...this.files.values()];
  }

  lookup(name: string): SecretFile | undefined {
    return this.files.get(name);
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}
