/**
 * Reads shared by everything asked at one store revision: the dispatcher's
 * syncs for one change run together, and each would otherwise read the same
 * records (services, a secret's current version, a secret's entitled nodes).
 * The promise is kept, so reads that start together share one; a read that
 * fails is not kept, so the next ask tries again. A new revision starts over.
 */
export class RevisionMemo<T> {
  #revision = -1;
  #reads = new Map<string, Promise<T>>();

  /** What `read` gives for `key` at `revision`, read once per revision. */
  get(revision: number, key: string, read: () => Promise<T>): Promise<T> {
    if (revision !== this.#revision) this.clear(revision);
    const reads = this.#reads;
    let kept = reads.get(key);
    if (!kept) {
      const started = read();
      reads.set(key, started);
      started.catch(() => reads.get(key) === started && reads.delete(key));
      kept = started;
    }
    return kept;
  }

  /** Forgets every read (also before the revision moves: a change the reads depend on arrived). */
  clear(revision = -1): void {
    this.#revision = revision;
    this.#reads = new Map();
  }
}
