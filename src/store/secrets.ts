/**
 * Secrets and their versions: the domain layer over a Backend. Records hold
 * only sealed values (see envelope.ts), so the in-memory and on-disk state is
 * ciphertext; plaintext exists only inside `create`, `rotate` and `reveal`.
 */
import { HushError } from '../errors/index.js';
import { DEFAULT_KEEP_VERSIONS, retainVersions } from '../rotation/index.js';
import { ConflictError, type Backend } from './backend.js';
import { Envelope, type SealedValue } from './envelope.js';
import { newObjectId } from './ids.js';
import type { Keyring } from './keyring.js';
import { SECRET_PREFIX, sealedKey, secretIdKey, secretKey, secretUseKey, secretUsersPrefix } from './keys.js';
import { assertValidLabels, assertValidName, assertValidValue, DEFAULT_MAX_VALUE_BYTES } from '../rules/index.js';

export interface VersionRecord extends SealedValue {
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
  versions: { version: number; createdAt: string }[];
}

export interface SecretsOptions {
  maxValueBytes?: number;
  /** How many versions to keep per secret (rotation's retention rule applies it); older ones are dropped on rotation. */
  keepVersions?: number;
}

/** The AAD binding of an internal sealed value (the CA key, a join secret): encrypted like a secret, never listed. */
export const sealedBinding = (name: string) => ({ id: 'internal', name, version: 1 });
const COMMIT_RETRIES = 5;

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

  async create(name: string, data: Uint8Array, labels: Record<string, string> = {}): Promise<SecretSummary> {
    assertValidName(name);
    assertValidValue(data, this.maxValueBytes);
    assertValidLabels(labels);
    return this.keyring.withActiveKek(() => this.createSealed(name, data, labels));
  }

  private async createSealed(name: string, data: Uint8Array, labels: Record<string, string>): Promise<SecretSummary> {
    const { term, kek } = this.keyring.activeKek();
    const id = newObjectId();
    const now = new Date().toISOString();
    const sealed = this.envelope.seal(data, { id, name, version: 1 }, kek, term);
    const record: SecretRecord = { id, name, labels, createdAt: now, updatedAt: now, versions: [{ version: 1, createdAt: now, ...sealed }] };
    // Each key built once: the engine looks it up several times (conditions, pending state, apply).
    const key = secretKey(name);
    const idKey = secretIdKey(id);
    try {
      await this.backend.commit({
        conditions: [{ key, modRevision: 0 }, { key: idKey, modRevision: 0 }, this.keyring.condition()],
        ops: [
          { type: 'put', key, value: JSON.stringify(record) },
          { type: 'put', key: idKey, value: name },
        ],
      });
    } catch (err) {
      if (err instanceof ConflictError) throw new HushError('conflict', `a secret named "${name}" already exists; use \`hush secret rotate ${name}\` to give it a new value`);
      throw err;
    }
    return summarize(record);
  }

  async list(): Promise<SecretSummary[]> {
    const entries = await this.backend.list(SECRET_PREFIX);
    return entries.map((e) => summarize(JSON.parse(e.value) as SecretRecord));
  }

  async inspect(nameOrId: string): Promise<SecretDetail> {
    const { record } = await this.find(nameOrId);
    return { ...summarize(record), versions: record.versions.map(({ version, createdAt }) => ({ version, createdAt })) };
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
      const useKey = secretUseKey(record.name);
      const use = await this.backend.get(useKey);
      const users = (await this.backend.list(secretUsersPrefix(record.name))).map((e) => e.key.slice(secretUsersPrefix(record.name).length));
      if (users.length > 0) throw inUse(record.name, users);
      try {
        await this.backend.commit({
          conditions: [
            { key: secretKey(record.name), modRevision },
            { key: useKey, modRevision: use?.modRevision ?? 0 },
          ],
          ops: [{ type: 'delete', key: secretKey(record.name) }, { type: 'delete', key: secretIdKey(record.id) }, ...(use ? [{ type: 'delete', key: useKey } as const] : [])],
        });
        return;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        if (attempt >= COMMIT_RETRIES) throw new HushError('conflict', `secret "${record.name}" changed while it was being removed; try again`);
      }
    }
  }

  /** Adds a new version and makes it current. */
  async rotate(nameOrId: string, data: Uint8Array): Promise<{ name: string; version: number }> {
    assertValidValue(data, this.maxValueBytes);
    return this.keyring.withActiveKek(() => this.addVersion(nameOrId, data));
  }

  private async addVersion(nameOrId: string, data: Uint8Array): Promise<{ name: string; version: number }> {
    for (let attempt = 0; ; attempt++) {
      const { record, modRevision } = await this.find(nameOrId);
      const { term, kek } = this.keyring.activeKek();
      const version = record.versions.at(-1)!.version + 1;
      const now = new Date().toISOString();
      const sealed = this.envelope.seal(data, { id: record.id, name: record.name, version }, kek, term);
      const next: SecretRecord = { ...record, updatedAt: now, versions: retainVersions([...record.versions, { version, createdAt: now, ...sealed }], this.keepVersions) };
      try {
        await this.backend.commit({
          conditions: [{ key: secretKey(record.name), modRevision }, this.keyring.condition()],
          ops: [{ type: 'put', key: secretKey(record.name), value: JSON.stringify(next) }],
        });
        return { name: record.name, version };
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= COMMIT_RETRIES) throw err;
      }
    }
  }

  /** The plaintext of a version (the current one by default). Only for delivery to an entitled node. */
  async reveal(nameOrId: string, version?: number): Promise<{ name: string; version: number; createdAt: string; data: Uint8Array }> {
    const { record } = await this.find(nameOrId);
    const v = version === undefined ? record.versions.at(-1) : record.versions.find((x) => x.version === version);
    if (!v) throw new HushError('not_found', `secret "${record.name}" has no version ${version}`);
    const data = this.envelope.open(v, { id: record.id, name: record.name, version: v.version }, this.keyring.kek(v.term));
    return { name: record.name, version: v.version, createdAt: v.createdAt, data };
  }

  /** Stores an internal value (CA key, join secret) sealed under the KEK, like a secret. */
  async putSealed(name: string, data: Uint8Array): Promise<void> {
    await this.keyring.withActiveKek(async () => {
      const { term, kek } = this.keyring.activeKek();
      const sealed = this.envelope.seal(data, sealedBinding(name), kek, term);
      await this.backend.commit({ conditions: [this.keyring.condition()], ops: [{ type: 'put', key: sealedKey(name), value: JSON.stringify(sealed) }] });
    });
  }

  async getSealed(name: string): Promise<Uint8Array | undefined> {
    this.keyring.assertUnlocked();
    const entry = await this.backend.get(sealedKey(name));
    if (!entry) return undefined;
    const sealed = JSON.parse(entry.value) as SealedValue;
    return this.envelope.open(sealed, sealedBinding(name), this.keyring.kek(sealed.term));
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

function inUse(name: string, users: string[]): HushError {
  const many = users.length > 1;
  return new HushError('in_use', `secret "${name}" is used by service${many ? 's' : ''} ${users.join(', ')}; remove or update ${many ? 'them' : 'it'} first`);
}

function summarize(record: SecretRecord): SecretSummary {
  const { id, name, labels, createdAt, updatedAt } = record;
  return { id, name, version: record.versions.at(-1)!.version, labels, createdAt, updatedAt };
}
