/**
 * The audit log's chain, as pure policy: what a record holds, how its tag is
 * made, and how a stored log is checked. The store appends and reads; the tag
 * function comes from it (keyed with a key derived from the root key, so that
 * whoever can write the backend but holds no key cannot re-forge the chain
 * after editing it, as a plain hash chain could be).
 *
 *   tag(n) = MAC(tag(n-1) ‖ canonical(record n)),   tag(0) = 32 zero bytes
 *
 * Each record also names its sequence number, and the log's head names the
 * last one, so a removed record (a gap), a reordered one (a number out of
 * place), an edited one (a tag that does not match) and a cut-off tail (the
 * head beyond the last record, or the store remembering more than is there)
 * each show, at the record where it happened.
 */

/** What is recorded: never a value. */
export interface AuditEntry {
  /** ISO time. */
  time: string;
  /** "local-root", "cert:<name> (<role>)", "node:<name>", "scheduler", "token-holder", ... */
  actor: string;
  /** What was asked: "secret.rotate", "node.rm", "denied", ... */
  action: string;
  /** What it was asked of: "secret/db_password", "node/web-1", a route. */
  object: string;
  /** "ok", or the refusal's error code ("forbidden", "conflict", ...). */
  result: string;
  /** Why a refusal was refused, or a detail such as the version made (never a value). */
  detail?: string;
}

export interface AuditRecord extends AuditEntry {
  seq: number;
  /** Hex MAC chaining this record to the one before. */
  tag: string;
}

/** The MAC that chains records (store/log-auth.ts derives it from the root key). */
export type ChainMac = (previous: Buffer, payload: Buffer) => Buffer;

export const GENESIS_TAG = Buffer.alloc(32);

/** The bytes a record's tag covers: every field but the tag, in a fixed order (JSON key order is not a contract). */
export function canonicalAuditPayload(seq: number, e: AuditEntry): Buffer {
  return Buffer.from(JSON.stringify([seq, e.time, e.actor, e.action, e.object, e.result, e.detail ?? null]));
}

/** Chains `entries` after the record whose tag is `previous` (hex or the genesis) and which has number `lastSeq`. */
export function chainEntries(entries: readonly AuditEntry[], lastSeq: number, previous: string | undefined, mac: ChainMac): AuditRecord[] {
  let prev: Buffer = previous === undefined ? GENESIS_TAG : Buffer.from(previous, 'hex');
  let seq = lastSeq;
  return entries.map((entry) => {
    seq++;
    const tag = mac(prev, canonicalAuditPayload(seq, entry));
    prev = tag;
    return { seq, ...pick(entry), tag: tag.toString('hex') };
  });
}

function pick(e: AuditEntry): AuditEntry {
  const out: AuditEntry = { time: e.time, actor: e.actor, action: e.action, object: e.object, result: e.result };
  if (e.detail !== undefined) out.detail = e.detail;
  return out;
}

export interface AuditHead {
  seq: number;
  tag: string;
}

export interface AuditProblem {
  /** The record number where the log stops being trustworthy. */
  seq: number;
  problem: 'edited' | 'removed' | 'reordered' | 'truncated' | 'head';
  message: string;
}

export interface AuditVerdict {
  ok: boolean;
  /** Records checked. */
  records: number;
  head?: AuditHead;
  problems: AuditProblem[];
}

/**
 * Checks a stored log: `stored` are the records in key order, each with the
 * number its key gives it; `head` is the stored head; `highWater` the last
 * number this store process appended or verified (memory an attacker with
 * backend access cannot rewind: it catches a tail cut off together with the
 * head). Reports every break, each at the record where it is.
 */
export function verifyAuditLog(stored: readonly { position: number; record: AuditRecord | undefined }[], head: AuditHead | undefined, mac: ChainMac, highWater = 0): AuditVerdict {
  const problems: AuditProblem[] = [];
  let prev: Buffer = GENESIS_TAG;
  let expected = 1;
  let last: AuditRecord | undefined;
  // Tags by the number their record claims: after two records swap places, the one after them still chains from the right tag, so only the swap is reported.
  const tagOf = new Map<number, Buffer>();
  for (const { position, record } of stored) {
    prev = tagOf.get(position - 1) ?? prev;
    if (position > expected) {
      const span = position - 1 > expected ? `records ${expected} to ${position - 1} are` : `record ${expected} is`;
      problems.push({ seq: expected, problem: 'removed', message: `${span} missing (removed)` });
      // The chain cannot be followed across the gap: resume from what is stored.
      prev = Buffer.from(record?.tag ?? '', 'hex');
      expected = position + 1;
      last = record;
      continue;
    }
    expected = position + 1;
    if (!record || typeof record.tag !== 'string') {
      problems.push({ seq: position, problem: 'edited', message: `record ${position} is not a record any more (edited)` });
      prev = Buffer.alloc(0);
      continue;
    }
    if (record.seq !== position) {
      problems.push({ seq: position, problem: 'reordered', message: `position ${position} holds record ${String(record.seq)} (reordered or moved)` });
    } else if (!mac(prev, canonicalAuditPayload(position, record)).equals(Buffer.from(record.tag, 'hex'))) {
      problems.push({ seq: position, problem: 'edited', message: `record ${position} does not match its tag (edited, or written without the key)` });
    }
    prev = Buffer.from(record.tag, 'hex');
    if (typeof record.seq === 'number' && !tagOf.has(record.seq)) tagOf.set(record.seq, prev);
    last = record;
  }
  const lastSeq = expected - 1;
  if (head && head.seq > lastSeq) {
    problems.push({ seq: lastSeq + 1, problem: 'truncated', message: `the log ends at record ${lastSeq} but its head says ${head.seq}: records ${lastSeq + 1} to ${head.seq} were removed (truncated)` });
  } else if (highWater > lastSeq) {
    problems.push({ seq: lastSeq + 1, problem: 'truncated', message: `the log ends at record ${lastSeq} but this store wrote up to record ${highWater}: the tail was cut off (truncated)` });
  } else if (head && (head.seq !== lastSeq || head.tag !== last?.tag)) {
    problems.push({ seq: head.seq, problem: 'head', message: `the head (record ${head.seq}) does not match the last record (${lastSeq})` });
  } else if (!head && lastSeq > 0) {
    problems.push({ seq: lastSeq, problem: 'head', message: 'the log has records but no head (removed)' });
  }
  problems.sort((a, b) => a.seq - b.seq);
  return { ok: problems.length === 0, records: stored.length, head, problems };
}
