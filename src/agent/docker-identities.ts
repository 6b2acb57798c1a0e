/**
 * Which Docker container a plugin mount belongs to. Docker's Mount call
 * carries only the volume name and a random mount ID (not the container id),
 * and `docker inspect` does not say which mountpoint a plugin volume got:
 * with two containers on one volume name it reports the same Source for both,
 * or none. So the match is made on the mount itself: when a container
 * starts (dockerd's event stream), its process's /proc/PID/mountinfo shows
 * the device (major:minor) of what is mounted at its volume's destination,
 * and each of our FUSE mounts has a device of its own, found in this
 * process's /proc/self/mountinfo (never by stat, which would ask our own
 * FUSE server and can deadlock it).
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from '../log/index.js';
import type { DockerContainer, DockerEngine } from './docker-engine.js';

export interface ContainerIdentity {
  /** Docker's container id (64 hex). */
  id: string;
  /** Its name, without Docker's leading "/". */
  name: string;
  labels: Record<string, string>;
}

export interface IdentitiesOptions {
  engine: DockerEngine;
  /** The plugin's name: a container mount with this Driver is ours. */
  driver: string;
  log: Logger;
  onIdentified(mountId: string, identity: ContainerIdentity): void;
}

/** Before reconnecting a broken event stream; dockerd replays what it missed (since=). */
const RECONNECT_MS = 1_000;

export class DockerIdentities {
  readonly #opts: IdentitiesOptions;
  /** Mount ID → its mountpoint and when it was made, waiting for its container to start. */
  readonly #pending = new Map<string, { mountpoint: string; sinceSeconds: number }>();
  #stopStream: (() => void) | undefined;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: IdentitiesOptions) {
    this.#opts = opts;
  }

  /** A mount was just made for Docker; its container starts once the Mount call returns. */
  expect(mountId: string, mountpoint: string): void {
    // A second earlier: dockerd's `since` is in whole seconds.
    this.#pending.set(mountId, { mountpoint, sinceSeconds: Math.floor(Date.now() / 1000) - 1 });
    this.#ensureStream();
  }

  forget(mountId: string): void {
    this.#pending.delete(mountId);
    if (this.#pending.size === 0) this.#closeStream();
  }

  close(): void {
    this.#closed = true;
    this.#pending.clear();
    this.#closeStream();
  }

  /** The stream runs only while some mount awaits its container, so an agent on a machine without Docker never dials it. */
  #ensureStream(): void {
    if (this.#stopStream || this.#retry || this.#closed) return;
    const since = Math.min(...[...this.#pending.values()].map((p) => p.sinceSeconds));
    this.#stopStream = this.#opts.engine.watchStarts(
      since,
      (event) => {
        if (event.id) void this.#identify(event.id);
      },
      (err) => {
        this.#stopStream = undefined;
        if (this.#closed || this.#pending.size === 0) return;
        this.#opts.log.warn({ dockerHost: this.#opts.engine.display, err: err.message }, 'docker event stream ended; containers are not identified until it is back (retrying)');
        this.#retry = setTimeout(() => {
          this.#retry = undefined;
          this.#ensureStream();
        }, RECONNECT_MS).unref();
      },
    );
  }

  #closeStream(): void {
    this.#stopStream?.();
    this.#stopStream = undefined;
    clearTimeout(this.#retry);
    this.#retry = undefined;
  }

  async #identify(containerId: string): Promise<void> {
    if (this.#pending.size === 0) return;
    let container: DockerContainer;
    try {
      container = await this.#opts.engine.inspect(containerId);
    } catch (err) {
      this.#opts.log.debug({ container: containerId, err: (err as Error).message }, 'could not inspect a started container');
      return;
    }
    const ours = (container.Mounts ?? []).filter((m) => m.Type === 'volume' && m.Driver === this.#opts.driver);
    // Pid 0: it already exited (its Unmount comes next); nothing to read.
    if (ours.length === 0 || !container.State?.Pid) return;
    const [theirs, mine] = await Promise.all([mountDevices(`/proc/${container.State.Pid}/mountinfo`), mountDevices('/proc/self/mountinfo')]);
    if (!theirs || !mine) return;
    for (const m of ours) {
      const device = theirs.get(m.Destination);
      if (!device) continue;
      for (const [mountId, pending] of this.#pending) {
        if (mine.get(pending.mountpoint) !== device) continue;
        this.#pending.delete(mountId);
        this.#opts.onIdentified(mountId, { id: container.Id, name: container.Name.replace(/^\//, ''), labels: container.Config?.Labels ?? {} });
      }
    }
    if (this.#pending.size === 0) this.#closeStream();
  }
}

/** Mount point → "major:minor" from a mountinfo file (the last mount at a path wins: it is the one seen), or undefined if unreadable. */
export async function mountDevices(file: string): Promise<Map<string, string> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined; // the process exited
  }
  const devices = new Map<string, string>();
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 5) continue;
    devices.set(unescapeMountinfo(fields[4]), fields[2]);
  }
  return devices;
}

/** mountinfo writes space, tab, newline and backslash in paths as \ooo. */
function unescapeMountinfo(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}
