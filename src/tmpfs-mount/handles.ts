/**
 * Open file handles: each pins the version it opened, so a read that reaches
 * the agent after a rotation still returns the bytes of the version the
 * reader opened (never a mix). Released handles drop their version at once.
 */
import type { OpenedVersion } from './types.js';

// fuse-native passes the handle back as an int32 and treats 0 as "no handle".
const MAX_HANDLE = 0x7fffffff;

export class HandleTable {
  private readonly open = new Map<number, OpenedVersion>();
  private next = 1;

  get size(): number {
    return this.open.size;
  }

  add(version: OpenedVersion): number {
    // Wrapping around after 2^31 opens must not reuse a handle still in use.
    while (this.open.has(this.next)) this.advance();
    const fd = this.next;
    this.advance();
    this.open.set(fd, version);
    return fd;
  }

  get(fd: number): OpenedVersion | undefined {
    return this.open.get(fd);
  }

  release(fd: number): void {
    this.open.delete(fd);
  }

  private advance(): void {
    this.next = this.next >= MAX_HANDLE ? 1 : this.next + 1;
  }
}
