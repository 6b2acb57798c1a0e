/**
 * Secrets and their versions: the domain layer over a Backend. Records hold
 * only sealed values (see envelope.ts), so the in-memory and on-disk state is
 * ciphertext; plaintext exists only inside `create`, `rotate` and `reveal`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { HushError } from '../errors/index.js';
import { afterRun, assertKeepVersions, DEFAULT_KEEP_VERSIONS, generateEncoded, isDue, retainVersions, type RandomSource, type RotationSchedule } from '../rotation/index.js';
import { ConflictError, type Backend, type KvCondition, type KvOp } from './backend.js';
import { Envelope, type SealedValue } from './envelope.js';
import { newObjectId } from './ids.js';
import { SECRET_PREFIX, SECRET_USE_PREFIX, sealedKey, secretIdKey, secretKey, secretUseKey, secretUsersPrefix } from './keys.js';
import { isKeyringConflict, type Keyring } from './keyring.js';
import { assertValidLabels, assertValidName, assertValidValue, DEFAULT_MAX_VALUE_BYTES } from '../rules/index.js';

/** How a version came to be, and who made it: shown by `hush secret versions` (never a value). */
export interface VersionMeta {
  /** "local-root", "cert:<name> (<role>)", "scheduler"; absent for versions made before this was recorded. */
  actor?: string;
  origin?: 'create' | 'rotate' | 'rollback' | 'schedule' | 'deploy';
  /** For a rollback: the version whose value it took. */
  from?: number;
}

export interface VersionRecord extends SealedValue, VersionMeta {
  version: number;
  createdAt: string;
}

export interface SecretRecord {
  id: string;
  name: string;
  labels: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  versions: VersionRecord[];
  /** Versions kept for this secret (`--keep`); the store's default when absent. */
  keep?: number;
  /** A durable rotation schedule (`--every`), run by the store's scheduler. */
  schedule?: RotationSchedule;
}

/** What callers may see: everything but the sealed data. */
export interface SecretSummary {
  id: string;
  name: string;
  version: number;
  labels: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

export interface SecretDetail extends SecretSummary {
  versions: ({ version: number; createdAt: string } & VersionMeta)[];
  /** Versions kept: this secret's own `--keep`, or the store's default. */
  keep: number;
  schedule?: RotationSchedule;
}

/** Options of a create or rotation: who asks (recorded on the version) and, optionally, the retention to set. */
export interface VersionOptions {
  actor?: string;
  keep?: number;
}

/**
 * A summary with the storage revision that last changed the record: any
 * change (new version, labels) moves it, so it serves as an optimistic
 * concurrency token (the Docker API's `Version.Index`).
 */
export interface RevisionedSecret extends SecretSummary {
  revision: number;
}

export interface SecretsOptions {
  maxValueBytes?: number;
  /** How many versions to keep per secret (rotation's retention rule applies it); older ones are dropped on rotation. */
  keepVersions?: number;
}

/** The AAD binding of an internal sealed value (the CA key, a join secret): encrypted like a secret, never listed. */
export const sealedBinding = (name: string) => ({ id: 'internal', name, version: 1 });
const COMMIT_RETRIES = 5;

/** A secret record as read, with the revisions a transaction conditions on. */
export interface ReadSecret {
  record: SecretRecord;
  modRevision: number;
  /** Of the secret's use key (keys.ts; 0 when absent): a service that starts using the secret moves it. */
  useRevision: number;
}

/**
 * The pieces of SecretStore that a larger transaction (a deploy, stacks.ts)
 * builds its operations from, so that sealing, version trimming and the key
 * layout live here only. Handed out by `SecretStore.sealing`, under the KEK gate.
 */
export interface SecretOps {
  /** Every secret record, with its revision. */
  readAll(): Promise<ReadSecret[]>;
  /** A new record holding `data` as version 1 (sealed). */
  newRecord(name: string, data: Uint8Array, labels: Record<string, string>, meta?: VersionMeta): SecretRecord;
  /** `record` with `data` sealed as its next version, made current. */
  nextVersion(record: SecretRecord, data: Uint8Array, meta?: VersionMeta): SecretRecord;
  /** Whether the current version holds exactly `data`: opened here, compared in constant time, wiped; never returned. */
  holdsValue(record: SecretRecord, data: Uint8Array): boolean;
  /** Writes a new record (with its id index): the conditions say neither key exists yet. */
  createTxn(record: SecretRecord): { conditions: KvCondition[]; ops: KvOp[] };
  /** Replaces an existing record read at `modRevision`. */
  replaceTxn(record: SecretRecord, modRevision: number): { conditions: KvCondition[]; ops: KvOp[] };
  /**
   * Removes a record as read: conditioned on its use key too, so a service
   * that started using it meanwhile fails the transaction. Put the removals
   * of services (with their use ops) before this in the same transaction.
   */
  removeTxn(read: ReadSecret): { conditions: KvCondition[]; ops: KvOp[] };
  /** Holds while the KEK that sealed the new versions is the active one: add it to any transaction that seals. */
  keyCondition(): KvCondition;
}

export class SecretStore {
  readonly maxValueBytes: number;
  private readonly keepVersions: number;

  constructor(
    private readonly backend: Backend,
    private readonly keyring: Keyring,
    private readonly envelope: Envelope,
    options: SecretsOptions = {},
  ) {
    this.maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.keepVersions = options.keepVersions ?? DEFAULT_KEEP_VERSIONS;
  }

  async create(name: string, data: Uint8Array, labels: Record<string, string> = {}, options: VersionOptions = {}): Promise<SecretSummary> {
    assertValidName(name);
    assertValidValue(data, this.maxValueBytes);
    assertValidLabels(labels);
    if (options.keep !== undefined) assertKeepVersions(options.keep);
    return this.keyring.withActiveKek(() => this.createSealed(name, data, labels, options));
  }

  private async createSealed(name: string, data: Uint8Array, labels: Record<string, string>, options: VersionOptions): Promise<SecretSummary> {
    const record = this.newRecord(name, data, labels, { actor: options.actor, origin: 'create' });
    if (options.keep !== undefined) record.keep = options.keep;
    const txn = createTxn(record);
    try {
      await this.backend.commit({ conditions: [...txn.conditions, this.keyring.condition()], ops: txn.ops });
    } catch (err) {
      if (err instanceof ConflictError && !isKeyringConflict(err)) throw new HushError('conflict', `a secret named "${name}" already exists; use \`hush secret rotate ${name}\` to give it a new value`);
      throw err;
    }
    return summarize(record);
  }

  async list(): Promise<SecretSummary[]> {
    const entries = await this.backend.list(SECRET_PREFIX);
    return entries.map((e) => summarize(JSON.parse(e.value) as SecretRecord));
  }

  async listRevisioned(): Promise<RevisionedSecret[]> {
    const entries = await this.backend.list(SECRET_PREFIX);
    return entries.map((e) => ({ ...summarize(JSON.parse(e.value) as SecretRecord), revision: e.modRevision }));
  }

  async getRevisioned(nameOrId: string): Promise<RevisionedSecret> {
    const { record, modRevision } = await this.find(nameOrId);
    return { ...summarize(record), revision: modRevision };
  }

  /** Counts for monitoring: secrets, and the versions kept of them all. Reads records only, never opens a value. */
  async counts(): Promise<{ secrets: number; versions: number }> {
    const entries = await this.backend.list(SECRET_PREFIX);
    let versions = 0;
    for (const e of entries) versions += (JSON.parse(e.value) as SecretRecord).versions.length;
    return { secrets: entries.length, versions };
  }

  /**
   * Replaces the labels of a secret if its record is still at `expectedRevision`
   * (as Docker's secret update: labels only, against the version the caller saw).
   */
  async replaceLabels(nameOrId: string, labels: Record<string, string>, expectedRevision: number): Promise<RevisionedSecret> {
    assertValidLabels(labels);
    const { record, modRevision } = await this.find(nameOrId);
    const stale = () => new HushError('conflict', `secret "${record.name}" is at version ${modRevision}, not ${expectedRevision}: it changed since it was read; inspect it again and retry`);
    if (modRevision !== expectedRevision) throw stale();
    const next: SecretRecord = { ...record, labels, updatedAt: new Date().toISOString() };
    let revision: number;
    try {
      revision = await this.backend.commit({
        conditions: [{ key: secretKey(record.name), modRevision }],
        ops: [{ type: 'put', key: secretKey(record.name), value: JSON.stringify(next) }],
      });
    } catch (err) {
      if (err instanceof ConflictError) throw stale();
      throw err;
    }
    return { ...summarize(next), revision };
  }

  async inspect(nameOrId: string): Promise<SecretDetail> {
    const { record } = await this.find(nameOrId);
    return {
      ...summarize(record),
      versions: record.versions.map(({ version, createdAt, actor, origin, from }) => ({ version, createdAt, actor, origin, from })),
      keep: record.keep ?? this.keepVersions,
      schedule: record.schedule,
    };
  }

  /**
   * Removes a secret no service uses (409 otherwise, as Docker). The check is
   * part of the delete's transaction: a service commit that starts using the
   * secret touches its use key (services.ts), and the delete is conditioned
   * on that key, so a service created between the check and the delete makes
   * the delete retry, and then refuse.
   */
  async remove(nameOrId: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const { record, modRevision } = await this.find(nameOrId);
      // The use key is read before the users are listed: a use added after this read moves the key, one added before is in the list.
      const use = await this.backend.get(secretUseKey(record.name));
      const users = (await this.backend.list(secretUsersPrefix(record.name))).map((e) => e.key.slice(secretUsersPrefix(record.name).length));
      if (users.length > 0) throw inUse(record.name, users);
      try {
        await this.backend.commit(removeTxn({ record, modRevision, useRevision: use?.modRevision ?? 0 }));
        return;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        if (attempt >= COMMIT_RETRIES) throw new HushError('conflict', `secret "${record.name}" changed while it was being removed; try again`);
      }
    }
  }

  /** Adds a new version and makes it current; `keep` also sets how many versions this secret keeps from now on. */
  async rotate(nameOrId: string, data: Uint8Array, options: VersionOptions = {}): Promise<{ name: string; version: number }> {
    assertValidValue(data, this.maxValueBytes);
    if (options.keep !== undefined) assertKeepVersions(options.keep);
    return this.keyring.withActiveKek(() =>
      this.addVersion(nameOrId, (record) => this.nextVersion(options.keep === undefined ? record : { ...record, keep: options.keep }, data, { actor: options.actor, origin: 'rotate' })),
    );
  }

  /**
   * Rolls back by moving forward: a new version holding the value of version
   * `to`, which must still be kept. History is never rewritten, so every node
   * sees an ordinary rotation, and the rollback itself can be rolled back.
   */
  async rollback(nameOrId: string, to: number, options: VersionOptions = {}): Promise<{ name: string; version: number; from: number }> {
    if (!Number.isInteger(to) || to < 1) throw new HushError('bad_request', `rollback: give a version number, not ${String(to)}`);
    const made = await this.keyring.withActiveKek(() =>
      this.addVersion(nameOrId, (record) => {
        const old = record.versions.find((v) => v.version === to);
        if (!old) {
          const kept = record.versions.map((v) => v.version);
          throw new HushError('not_found', `secret "${record.name}" keeps versions ${kept[0]} to ${kept.at(-1)}, not ${to}: older versions are destroyed (it keeps ${record.keep ?? this.keepVersions})`);
        }
        const plain = this.envelope.open(old, { id: record.id, name: record.name, version: old.version }, this.keyring.kek(old.term));
        try {
          return this.nextVersion(record, plain, { actor: options.actor, origin: 'rollback', from: to });
        } finally {
          plain.fill(0);
        }
      }),
    );
    return { ...made, from: to };
  }

  /** Sets (or with undefined removes) a secret's rotation schedule. The value is unchanged. */
  async setSchedule(nameOrId: string, schedule: RotationSchedule | undefined): Promise<SecretDetail> {
    for (let attempt = 0; ; attempt++) {
      const { record, modRevision } = await this.find(nameOrId);
      const next: SecretRecord = { ...record };
      if (schedule) next.schedule = schedule;
      else delete next.schedule;
      try {
        await this.backend.commit({ conditions: [{ key: secretKey(record.name), modRevision }], ops: [{ type: 'put', key: secretKey(record.name), value: JSON.stringify(next) }] });
        return this.inspect(record.name);
      } catch (err) {
        if (!(err instanceof ConflictError) || isKeyringConflict(err) || attempt >= COMMIT_RETRIES) throw err;
      }
    }
  }

  /** Every secret's schedule (for the scheduler at start); names without one are left out. */
  async schedules(): Promise<Map<string, RotationSchedule>> {
    this.keyring.assertUnlocked();
    const out = new Map<string, RotationSchedule>();
    for (const e of await this.backend.list(SECRET_PREFIX)) {
      const record = JSON.parse(e.value) as SecretRecord;
      if (record.schedule) out.set(record.name, record.schedule);
    }
    return out;
  }

  /** A secret's schedule, if it has one (undefined also when the secret is gone). */
  async scheduleOf(name: string): Promise<RotationSchedule | undefined> {
    this.keyring.assertUnlocked();
    const entry = await this.backend.get(secretKey(name));
    return entry ? (JSON.parse(entry.value) as SecretRecord).schedule : undefined;
  }

  /**
   * Runs a scheduled rotation if it is due at `now`: the new generated
   * version and the schedule's next due time in one commit, conditioned on
   * the record (and on `fence`, the scheduler's lease), so a rotation runs
   * once per due time however many times it is attempted. Resolves with the
   * version made, or undefined if nothing was due (or the secret is gone).
   */
  async runSchedule(name: string, now: Date, random: RandomSource, fence: KvCondition[] = []): Promise<{ name: string; version: number } | undefined> {
    return this.keyring.withActiveKek(async () => {
      for (let attempt = 0; ; attempt++) {
        this.keyring.assertUnlocked();
        const entry = await this.backend.get(secretKey(name));
        if (!entry) return undefined;
        const record = JSON.parse(entry.value) as SecretRecord;
        const schedule = record.schedule;
        if (!schedule || !isDue(schedule, now)) return undefined;
        const data = generateEncoded(schedule.generate, schedule.charset, random);
        let next: SecretRecord;
        try {
          next = { ...this.nextVersion(record, data, { actor: 'scheduler', origin: 'schedule' }), schedule: afterRun(schedule, now) };
        } finally {
          data.fill(0);
        }
        try {
          await this.backend.commit({
            conditions: [{ key: secretKey(name), modRevision: entry.modRevision }, this.keyring.condition(), ...fence],
            ops: [{ type: 'put', key: secretKey(name), value: JSON.stringify(next) }],
          });
          return { name, version: next.versions.at(-1)!.version };
        } catch (err) {
          if (!(err instanceof ConflictError) || isKeyringConflict(err) || attempt >= COMMIT_RETRIES) throw err;
          // Reads see only durable state: give the commit that won time to become durable before reading again.
          await new Promise((r) => setTimeout(r, 5 * (attempt + 1)));
        }
      }
    });
  }

  private async addVersion(nameOrId: string, make: (record: SecretRecord) => SecretRecord): Promise<{ name: string; version: number }> {
    for (let attempt = 0; ; attempt++) {
      const { record, modRevision } = await this.find(nameOrId);
      const next = make(record);
      const version = next.versions.at(-1)!.version;
      try {
        await this.backend.commit({
          conditions: [{ key: secretKey(record.name), modRevision }, this.keyring.condition()],
          ops: [{ type: 'put', key: secretKey(record.name), value: JSON.stringify(next) }],
        });
        return { name: record.name, version };
      } catch (err) {
        if (!(err instanceof ConflictError) || isKeyringConflict(err) || attempt >= COMMIT_RETRIES) throw err;
      }
    }
  }

  private newRecord(name: string, data: Uint8Array, labels: Record<string, string>, meta: VersionMeta = {}): SecretRecord {
    const { term, kek } = this.keyring.activeKek();
    const id = newObjectId();
    const now = new Date().toISOString();
    const sealed = this.envelope.seal(data, { id, name, version: 1 }, kek, term);
    return { id, name, labels, createdAt: now, updatedAt: now, versions: [{ version: 1, createdAt: now, ...definedMeta(meta), ...sealed }] };
  }

  /**
   * The record with `data` as its next version. Versions beyond the secret's
   * retention leave the record here, with their wrapped data keys: nothing
   * else holds those, so once the log that still does is compacted the
   * values are gone for good (test/integration/rotation-history.test.ts).
   */
  private nextVersion(record: SecretRecord, data: Uint8Array, meta: VersionMeta = {}): SecretRecord {
    const { term, kek } = this.keyring.activeKek();
    const version = record.versions.at(-1)!.version + 1;
    const now = new Date().toISOString();
    const sealed = this.envelope.seal(data, { id: record.id, name: record.name, version }, kek, term);
    return { ...record, updatedAt: now, versions: retainVersions([...record.versions, { version, createdAt: now, ...definedMeta(meta), ...sealed }], record.keep ?? this.keepVersions) };
  }

  /**
   * Runs `work` with the op-building pieces of this store (see SecretOps),
   * under the KEK gate like every seal, so a KEK rotation never interleaves
   * with a transaction that seals under the KEK it replaces.
   */
  async sealing<T>(work: (ops: SecretOps) => Promise<T>): Promise<T> {
    return this.keyring.withActiveKek(() =>
      work({
        readAll: async () => {
          this.keyring.assertUnlocked();
          const uses = new Map((await this.backend.list(SECRET_USE_PREFIX)).map((e) => [e.key.slice(SECRET_USE_PREFIX.length), e.modRevision]));
          return (await this.backend.list(SECRET_PREFIX)).map((e) => {
            const record = JSON.parse(e.value) as SecretRecord;
            return { record, modRevision: e.modRevision, useRevision: uses.get(record.name) ?? 0 };
          });
        },
        newRecord: (name, data, labels, meta) => {
          assertValidName(name);
          assertValidValue(data, this.maxValueBytes);
          assertValidLabels(labels);
          return this.newRecord(name, data, labels, meta);
        },
        nextVersion: (record, data, meta) => {
          assertValidValue(data, this.maxValueBytes);
          return this.nextVersion(record, data, meta);
        },
        holdsValue: (record, data) => {
          const current = record.versions.at(-1)!;
          const plain = this.envelope.open(current, { id: record.id, name: record.name, version: current.version }, this.keyring.kek(current.term));
          try {
            return bytesEqual(plain, data);
          } finally {
            plain.fill(0);
          }
        },
        createTxn,
        replaceTxn: (record, modRevision) => ({
          conditions: [{ key: secretKey(record.name), modRevision }],
          ops: [{ type: 'put', key: secretKey(record.name), value: JSON.stringify(record) }],
        }),
        removeTxn,
        keyCondition: () => this.keyring.condition(),
      }),
    );
  }

  /** The plaintext of a version (the current one by default). Only for delivery to an entitled node. */
  async reveal(nameOrId: string, version?: number): Promise<{ id: string; name: string; version: number; createdAt: string; data: Uint8Array }> {
    return this.keyring.withCurrentKeys(async () => {
      const { record } = await this.find(nameOrId);
      const v = version === undefined ? record.versions.at(-1) : record.versions.find((x) => x.version === version);
      if (!v) throw new HushError('not_found', `secret "${record.name}" has no version ${version}`);
      const data = this.envelope.open(v, { id: record.id, name: record.name, version: v.version }, this.keyring.kek(v.term));
      return { id: record.id, name: record.name, version: v.version, createdAt: v.createdAt, data };
    });
  }

  /** Stores an internal value (CA key, join secret) sealed under the KEK, like a secret. */
  async putSealed(name: string, data: Uint8Array): Promise<void> {
    await this.keyring.withActiveKek(async () => {
      const { term, kek } = this.keyring.activeKek();
      const sealed = this.envelope.seal(data, sealedBinding(name), kek, term);
      await this.backend.commit({ conditions: [this.keyring.condition()], ops: [{ type: 'put', key: sealedKey(name), value: JSON.stringify(sealed) }] });
    });
  }

  /** Internal values sealed under the KEK and plain `ops`, in one commit: all or nothing (a CA's new key and its certificate). */
  async commitSealed(values: { name: string; data: Uint8Array }[], ops: KvOp[]): Promise<void> {
    await this.keyring.withActiveKek(async () => {
      const { term, kek } = this.keyring.activeKek();
      const sealedOps: KvOp[] = values.map(({ name, data }) => ({ type: 'put', key: sealedKey(name), value: JSON.stringify(this.envelope.seal(data, sealedBinding(name), kek, term)) }));
      await this.backend.commit({ conditions: [this.keyring.condition()], ops: [...sealedOps, ...ops] });
    });
  }

  /**
   * Writes an internal sealed value, with `ops`, only while `absentKey` is
   * absent (replicas racing to make the same first value: one wins). Resolves
   * with whether this call wrote it.
   */
  async putSealedIfAbsent(name: string, data: Uint8Array, absentKey: string, ops: KvOp[] = []): Promise<boolean> {
    return this.keyring.withActiveKek(async () => {
      const { term, kek } = this.keyring.activeKek();
      const sealed = this.envelope.seal(data, sealedBinding(name), kek, term);
      try {
        await this.backend.commit({
          conditions: [this.keyring.condition(), { key: absentKey, modRevision: 0 }],
          ops: [{ type: 'put', key: sealedKey(name), value: JSON.stringify(sealed) }, ...ops],
        });
        return true;
      } catch (err) {
        if (err instanceof ConflictError && err.key === absentKey) return false;
        throw err;
      }
    });
  }

  async getSealed(name: string): Promise<Uint8Array | undefined> {
    return this.keyring.withCurrentKeys(async () => {
      this.keyring.assertUnlocked();
      const entry = await this.backend.get(sealedKey(name));
      if (!entry) return undefined;
      const sealed = JSON.parse(entry.value) as SealedValue;
      return this.envelope.open(sealed, sealedBinding(name), this.keyring.kek(sealed.term));
    });
  }

  private async find(nameOrId: string): Promise<{ record: SecretRecord; modRevision: number }> {
    this.keyring.assertUnlocked();
    let entry = await this.backend.get(secretKey(nameOrId));
    if (!entry) {
      const byId = await this.backend.get(secretIdKey(nameOrId));
      if (byId) entry = await this.backend.get(secretKey(byId.value));
    }
    if (!entry) throw new HushError('not_found', `no secret named "${nameOrId}"; \`hush secret ls\` lists them`);
    return { record: JSON.parse(entry.value) as SecretRecord, modRevision: entry.modRevision };
  }
}

/** A new record and its id index; each key built once (the engine looks it up several times). */
function createTxn(record: SecretRecord): { conditions: KvCondition[]; ops: KvOp[] } {
  const key = secretKey(record.name);
  const idKey = secretIdKey(record.id);
  return {
    conditions: [
      { key, modRevision: 0 },
      { key: idKey, modRevision: 0 },
    ],
    ops: [
      { type: 'put', key, value: JSON.stringify(record) },
      { type: 'put', key: idKey, value: record.name },
    ],
  };
}

/** Removes a record as read; the use key's condition makes a use added meanwhile fail the transaction. */
function removeTxn({ record, modRevision, useRevision }: ReadSecret): { conditions: KvCondition[]; ops: KvOp[] } {
  const useKey = secretUseKey(record.name);
  return {
    conditions: [
      { key: secretKey(record.name), modRevision },
      { key: useKey, modRevision: useRevision },
    ],
    ops: [{ type: 'delete', key: secretKey(record.name) }, { type: 'delete', key: secretIdKey(record.id) }, ...(useRevision ? [{ type: 'delete', key: useKey } as const] : [])],
  };
}

function inUse(name: string, users: string[]): HushError {
  const many = users.length > 1;
  return new HushError('in_use', `secret "${name}" is used by service${many ? 's' : ''} ${users.join(', ')}; remove or update ${many ? 'them' : 'it'} first`);
}

/**
 * Constant-time equality of two values, as swarmkit compares secrets:
 * hashing first makes both sides 32 bytes, so not even the length of the
 * stored value shows in the timing.
 */
function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  const digest = (x: Uint8Array) => createHash('sha256').update(x).digest();
  return timingSafeEqual(digest(a), digest(b));
}

/** Only the fields that are set: a record does not grow `"actor": null` keys. */
function definedMeta(meta: VersionMeta): VersionMeta {
  const out: VersionMeta = {};
  if (meta.actor !== undefined) out.actor = meta.actor;
  if (meta.origin !== undefined) out.origin = meta.origin;
  if (meta.from !== undefined) out.from = meta.from;
  return out;
}

function summarize(record: SecretRecord): SecretSummary {
  const { id, name, labels, createdAt, updatedAt } = record;
  return { id, name, version: record.versions.at(-1)!.version, labels, createdAt, updatedAt };
}
