/**
 * The audit log in the store: records appended through the backend, chained
 * and tagged as rotation/audit-chain.ts says, with the key the keyring
 * derives from the root key.
 *
 * Appends are serialised by the backend's conditional commit on the head key
 * (`audit-head`): a commit that adds records n+1.. is conditioned on the head
 * still being at n, so with several store processes on one backend the log
 * stays one sequence (a loser re-reads the head and chains after the winner).
 * Within a process, entries that arrive while a commit is in flight go out
 * together in the next one (one commit, one fsync, however many requests).
 */
import { chainEntries, verifyAuditLog, type AuditEntry, type AuditHead, type AuditRecord, type AuditVerdict } from '../rotation/index.js';
import { log } from '../log/index.js';
import { ConflictError, type Backend, type KvOp } from './backend.js';
import { AUDIT_HEAD_KEY, AUDIT_PREFIX, auditKey } from './keys.js';
import type { Keyring } from './keyring.js';

export interface AuditQuery {
  /** Records at or after this ISO time. */
  since?: string;
  /** Records whose actor contains this text. */
  actor?: string;
  /** The newest `limit` of the matches. */
  limit?: number;
}

interface Waiting {
  entry: AuditEntry;
  resolve: (record: AuditRecord) => void;
  reject: (err: Error) => void;
}

const MAX_BATCH = 256;
const CONFLICT_RETRIES = 30;

export class AuditLog {
  private waiting: Waiting[] = [];
  private flushing = false;
  /** The highest record number this process appended or read: a cut-off tail shows against it. */
  private highWater = 0;

  /** Commits this process saw that only appended to the audit log. */
  private auditOnlyCommits = 0;

  constructor(
    private readonly backend: Backend,
    private readonly keyring: Keyring,
  ) {
    backend.watch((event) => {
      if (event.ops.every((op) => op.key.startsWith(AUDIT_PREFIX) || op.key === AUDIT_HEAD_KEY)) this.auditOnlyCommits++;
    });
  }

  /**
   * The store's revision without the audit log's own appends since this
   * process started: it moves by one per commit that changes data, and not
   * for a recorded refusal. `/healthz` reports it, so "a refused request
   * changed nothing" still reads as an unchanged number, and "one
   * transaction" as one more. Compare two readings; it is not a backend
   * revision (it restarts from the backend's revision at each start).
   */
  dataRevision(): number {
    return this.backend.revision() - this.auditOnlyCommits;
  }

  /**
   * Appends a record; resolves once it is durable. Entries made while the
   * store is locked cannot be chained (no key): they are logged and dropped,
   * which `docs/security.md` says (only unlock and refusals happen then).
   */
  append(entry: AuditEntry): Promise<AuditRecord | undefined> {
    if (this.keyring.locked) {
      log.warn({ audit: entry }, 'not in the audit log: the store is locked (no key to chain the record with)');
      return Promise.resolve(undefined);
    }
    return new Promise<AuditRecord>((resolve, reject) => {
      this.waiting.push({ entry, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, MAX_BATCH);
        try {
          const records = await this.commit(batch.map((w) => w.entry));
          batch.forEach((w, i) => w.resolve(records[i]!));
        } catch (err) {
          for (const w of batch) w.reject(err as Error);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async commit(entries: AuditEntry[]): Promise<AuditRecord[]> {
    const mac = this.keyring.auditMac();
    for (let attempt = 0; ; attempt++) {
      const headEntry = await this.backend.get(AUDIT_HEAD_KEY);
      const head = headEntry ? (JSON.parse(headEntry.value) as AuditHead) : undefined;
      const records = chainEntries(entries, head?.seq ?? 0, head?.tag, mac);
      const last = records.at(-1)!;
      const ops: KvOp[] = records.map((r) => ({ type: 'put', key: auditKey(r.seq), value: JSON.stringify(r) }));
      ops.push({ type: 'put', key: AUDIT_HEAD_KEY, value: JSON.stringify({ seq: last.seq, tag: last.tag } satisfies AuditHead) });
      try {
        await this.backend.commit({ conditions: [{ key: AUDIT_HEAD_KEY, modRevision: headEntry?.modRevision ?? 0 }], ops });
        this.highWater = Math.max(this.highWater, last.seq);
        return records;
      } catch (err) {
        // Another store process appended first: chain after its records, once they are durable (reads see only durable state).
        if (!(err instanceof ConflictError) || attempt >= CONFLICT_RETRIES) throw err;
        await new Promise((r) => setTimeout(r, Math.min(100, 2 ** attempt) * (0.5 + Math.random())));
      }
    }
  }

  /** Records matching `query`, oldest first. */
  async list(query: AuditQuery = {}): Promise<AuditRecord[]> {
    this.keyring.assertUnlocked();
    const since = query.since === undefined ? undefined : Date.parse(query.since);
    const out: AuditRecord[] = [];
    for (const e of await this.backend.list(AUDIT_PREFIX)) {
      let record: AuditRecord;
      try {
        record = JSON.parse(e.value) as AuditRecord;
      } catch {
        continue; // unreadable: `verify` says where
      }
      if (since !== undefined && !(Date.parse(record.time) >= since)) continue;
      if (query.actor !== undefined && !String(record.actor).includes(query.actor)) continue;
      out.push(record);
    }
    return query.limit === undefined ? out : out.slice(-query.limit);
  }

  /** Checks the whole stored log (see rotation/audit-chain.ts), against this process's memory of how far it reached too. */
  async verify(): Promise<AuditVerdict> {
    const mac = this.keyring.auditMac();
    const stored = (await this.backend.list(AUDIT_PREFIX)).map((e) => {
      let record: AuditRecord | undefined;
      try {
        record = JSON.parse(e.value) as AuditRecord;
      } catch {
        record = undefined;
      }
      return { position: Number(e.key.slice(AUDIT_PREFIX.length)), record };
    });
    stored.sort((a, b) => a.position - b.position);
    const headEntry = await this.backend.get(AUDIT_HEAD_KEY);
    let head: AuditHead | undefined;
    try {
      head = headEntry ? (JSON.parse(headEntry.value) as AuditHead) : undefined;
    } catch {
      head = { seq: Number.NaN, tag: '' };
    }
    const verdict = verifyAuditLog(stored, head, mac, this.highWater);
    // A log verified whole raises the mark: cutting it back later shows.
    if (verdict.ok && head) this.highWater = Math.max(this.highWater, head.seq);
    return verdict;
  }
}
