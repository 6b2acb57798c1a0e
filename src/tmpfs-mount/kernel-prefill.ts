/**
 * Puts a new version into the page cache before the container reads it, so
 * that its first read after a rotation costs one request (the LOOKUP of the
 * name) instead of two (LOOKUP, then READ for the empty page cache).
 *
 * The kernel takes bytes for a node's page cache (FUSE_NOTIFY_STORE) only for
 * a node it holds, and it comes to hold a node only through a lookup made by
 * some process. The agent must not read its own mount, so a child (`sh`, its
 * `[ -e ]` builtin) looks up the version under a prefill name: the mount's
 * random prefix followed by the node id, which the serving threads answer for
 * current versions only and never record as an access (kernel-dispatch.ts).
 * The dentry the lookup leaves keeps the node, and its pages, until the
 * version is superseded; then that name is dropped too (`release`).
 *
 * The container's first open of the new version still asks the agent (its
 * LOOKUP of the file's name, which the audit of who read what records); only
 * the READ is saved.
 *
 * Only versions that replace one the container looked up are filled
 * (kernel-view.ts): a file the container never touched gets no plaintext in
 * its page cache.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { invalEntryNotification, ROOT_ID, storeNotification } from './fuse-abi.js';

/** Nodes per batch: `sh` reads its stdin a byte at a time, ~250 µs per lookup here, so a batch takes well under a second. */
const BATCH = 1_000;
const LOOKUP_TIMEOUT_MS = 10_000;

export interface PrefillPorts {
  /** The version's plaintext (a copy, zeroed here once written), or undefined when it was superseded meanwhile. */
  open(id: number): Buffer | undefined;
  /** Writes a notification to the kernel; returns the errno code if it refused it. */
  notify(message: Buffer): string | null;
  warn(fields: Record<string, unknown>, message: string): void;
}

export class Prefiller {
  #queue: number[] = [];
  #released: number[] = [];
  #running: Promise<void> | undefined;

  constructor(
    private readonly mountpoint: string,
    private readonly prefix: string,
    private readonly ports: PrefillPorts,
  ) {}

  /** The name a node is looked up by for its fill. */
  #nameOf(id: number): string {
    return `${this.prefix}${id}`;
  }

  /** Queues the nodes; they are filled in the background, in order. */
  fill(ids: number[]): void {
    this.#queue.push(...ids);
    this.#start();
  }

  /**
   * Superseded nodes that had a prefill name: the kernel is told to drop
   * those names (and with them its last hold on the node), in the
   * background: the rotation does not wait for it.
   */
  release(ids: number[]): void {
    this.#released.push(...ids);
    this.#start();
  }

  /** Resolves when every queued node has been tried (tests, unmount). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Forgets the fills queued (the mount is going away); names to drop still go. */
  stop(): void {
    this.#queue.length = 0;
  }

  #start(): void {
    this.#running ??= this.#drain().finally(() => (this.#running = undefined));
  }

  async #drain(): Promise<void> {
    // Not inside the refresh that queued the work: that one makes the rotation visible, and returns first.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.#queue.length > 0 || this.#released.length > 0) {
      for (const id of this.#released.splice(0)) {
        const refused = this.ports.notify(invalEntryNotification(ROOT_ID, this.#nameOf(id)));
        // ENOENT: the kernel had dropped that name already.
        if (refused !== null && refused !== 'ENOENT') this.ports.warn({ node: id, error: refused }, 'secrets mount: the kernel refused to drop a prefill name');
      }
      if (this.#queue.length === 0) break;
      const batch = this.#queue.splice(0, BATCH);
      const failed = await lookups.lookUp(batch.map((id) => join(this.mountpoint, this.#nameOf(id))));
      if (failed !== null) {
        this.ports.warn({ error: failed }, 'secrets mount: the lookups that fill new versions into the page cache failed; their first reads will ask the agent');
        continue;
      }
      for (const id of batch) this.#store(id);
    }
  }

  #store(id: number): void {
    let plaintext: Buffer | undefined;
    let message: Buffer | undefined;
    try {
      plaintext = this.ports.open(id);
      if (plaintext === undefined) return;
      message = storeNotification(id, plaintext);
      const refused = this.ports.notify(message);
      // ENOENT: the kernel no longer holds the node (superseded and forgotten meanwhile).
      if (refused !== null && refused !== 'ENOENT') this.ports.warn({ node: id, error: refused }, 'secrets mount: the kernel refused a page-cache fill');
    } catch (err) {
      // Never a value in the message: the error of a decrypt or a buffer allocation.
      this.ports.warn({ node: id, error: (err as Error).message }, 'secrets mount: a page-cache fill failed; its first read will ask the agent');
    } finally {
      plaintext?.fill(0);
      message?.fill(0);
    }
  }
}

/**
 * One long-lived `sh` per agent makes the lookups of every mount: spawning
 * costs the main thread ~10 ms here (the fork of a large process), a line on
 * a pipe nothing. It reads one path per line (on its stdin: the names never
 * show in /proc/<pid>/cmdline, which every user of the host can read) and
 * answers an empty line, the end of a batch, with an empty line. A path that
 * is gone (its version superseded meanwhile) is no failure.
 */
const SCRIPT = 'while IFS= read -r p; do if [ -z "$p" ]; then echo; else [ -e "$p" ] || :; fi; done';

interface Batch {
  done: (failure: string | null) => void;
  timer: NodeJS.Timeout;
}

class LookupChild {
  #child: ChildProcess | undefined;
  readonly #waiting: Batch[] = [];

  /** Looks up each path; resolves null once all were looked up, else why not. */
  lookUp(paths: string[]): Promise<string | null> {
    if (paths.some((p) => p.includes('\n'))) return Promise.resolve('a path with a newline');
    return new Promise((resolve) => {
      const child = this.#child ?? this.#start();
      const timer = setTimeout(() => this.#fail(child, `no answer within ${LOOKUP_TIMEOUT_MS} ms`), LOOKUP_TIMEOUT_MS);
      timer.unref();
      this.#waiting.push({ done: resolve, timer });
      // Waiting for an answer keeps the agent running; idle, the child does not (#finish).
      (child.stdout as Socket).ref();
      child.stdin!.write(`${paths.join('\n')}\n\n`);
    });
  }

  #start(): ChildProcess {
    // An empty environment: the agent's (a join token, say) is none of its business; it runs builtins only.
    const child = spawn('/bin/sh', ['-c', SCRIPT], { stdio: ['pipe', 'pipe', 'ignore'], env: {} });
    this.#child = child;
    child.stdout!.on('data', (chunk: Buffer) => {
      for (let i = 0; i < chunk.length; i++) if (chunk[i] === 0x0a) this.#finish(null);
    });
    child.on('error', (err) => this.#fail(child, `cannot run /bin/sh: ${err.message}`));
    child.on('exit', (code, signal) => this.#fail(child, `the lookup child ended (${signal ?? `code ${code}`})`));
    // A closed pipe (the child died) is reported by 'exit'.
    child.stdin!.on('error', () => {});
    // Idle, it must not keep the agent running; at the agent's exit it reads EOF and ends.
    child.unref();
    (child.stdin as Socket).unref();
    return child;
  }

  #finish(failure: string | null): void {
    const batch = this.#waiting.shift();
    if (!batch) return;
    clearTimeout(batch.timer);
    if (this.#waiting.length === 0) (this.#child?.stdout as Socket | undefined)?.unref();
    batch.done(failure);
  }

  #fail(child: ChildProcess, why: string): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    child.kill('SIGKILL');
    while (this.#waiting.length > 0) this.#finish(why);
  }
}

/** Shared by every mount of the process. */
const lookups = new LookupChild();
