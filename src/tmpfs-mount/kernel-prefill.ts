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
 * The child gets the prefix in its environment and the ids as arguments:
 * /proc/<pid>/cmdline is readable by every user of the host, environ only by
 * root. The dentry the lookup leaves keeps the node, and its pages, until the
 * version is superseded, when its name is invalidated with the file's.
 *
 * The container's first open of the new version still asks the agent (its
 * LOOKUP of the file's name, which the audit of who read what records); only
 * the READ is saved.
 *
 * Only versions that replace one the container looked up are filled
 * (kernel-view.ts): a file the container never touched gets no plaintext in
 * its page cache.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { storeNotification } from './fuse-abi.js';

/** Nodes per `sh`: its lookups take ~50 µs each here, so a batch is done in well under a second. */
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
  #running: Promise<void> | undefined;

  constructor(
    private readonly mountpoint: string,
    private readonly prefix: string,
    private readonly ports: PrefillPorts,
  ) {}

  /** The name a node is looked up by for its prefill. */
  nameOf(id: number): string {
    return `${this.prefix}${id}`;
  }

  /** Queues the nodes; they are filled in the background, in order. */
  fill(ids: number[]): void {
    this.#queue.push(...ids);
    this.#running ??= this.#drain().finally(() => (this.#running = undefined));
  }

  /** Resolves when every queued node has been tried (tests, unmount). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Forgets what is queued (the mount is going away). */
  stop(): void {
    this.#queue.length = 0;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, BATCH);
      const failed = await lookUp(join(this.mountpoint, this.prefix), batch);
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
 * Looks up `prefix` + id for each id from a child process; null when it ran
 * to the end, else why not. A name that is gone (its version superseded
 * meanwhile) is no failure.
 */
function lookUp(prefix: string, ids: number[]): Promise<string | null> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', 'for id; do [ -e "$HUSH_FILL_PREFIX$id" ] || :; done', 'sh', ...ids.map(String)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { HUSH_FILL_PREFIX: prefix },
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), LOOKUP_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve(`cannot run /bin/sh: ${err.message}`);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve(code === 0 ? null : stderr.trim() || `sh ended with ${signal ?? `code ${code}`}`);
    });
  });
}
