/**
 * KEK rotation (`hush key rotate`), next to the keyring as Vault keeps
 * Rotate on its barrier: a new key term, every data key re-wrapped under it
 * (the ciphertext of the values is untouched), and the new keyring committed
 * with the re-wrapped records in one transaction, so a crash leaves either
 * all old or all new. Old terms leave the keyring with that commit.
 */
import { ConflictError, type Backend, type KvCondition, type KvOp } from './backend.js';
import type { Envelope, SealedValue } from './envelope.js';
import { SEALED_PREFIX, SECRET_PREFIX } from './keys.js';
import { isKeyringConflict, type Keyring } from './keyring.js';
import { sealedBinding, type SecretRecord } from './secrets.js';

const COMMIT_RETRIES = 5;

export async function rotateKek(backend: Backend, keyring: Keyring, envelope: Envelope): Promise<{ term: number; secrets: number }> {
  return keyring.rotating(() => rewrapAll(backend, keyring, envelope));
}

async function rewrapAll(backend: Backend, keyring: Keyring, envelope: Envelope): Promise<{ term: number; secrets: number }> {
  for (let attempt = 0; ; attempt++) {
    const rotation = keyring.prepareRotation();
    const entries = await backend.list(SECRET_PREFIX);
    const conditions: KvCondition[] = [rotation.condition];
    const ops: KvOp[] = [{ type: 'put', ...rotation.op }];
    for (const entry of entries) {
      const record = JSON.parse(entry.value) as SecretRecord;
      const versions = record.versions.map((v) => ({
        ...v,
        ...envelope.rewrap(v, { id: record.id, name: record.name, version: v.version }, keyring.kek(v.term), rotation.kek, rotation.term),
      }));
      conditions.push({ key: entry.key, modRevision: entry.modRevision });
      ops.push({ type: 'put', key: entry.key, value: JSON.stringify({ ...record, versions }) });
    }
    for (const entry of await backend.list(SEALED_PREFIX)) {
      const sealed = JSON.parse(entry.value) as SealedValue;
      const name = entry.key.slice(SEALED_PREFIX.length);
      const rewrapped = envelope.rewrap(sealed, sealedBinding(name), keyring.kek(sealed.term), rotation.kek, rotation.term);
      conditions.push({ key: entry.key, modRevision: entry.modRevision });
      ops.push({ type: 'put', key: entry.key, value: JSON.stringify(rewrapped) });
    }
    try {
      const revision = await backend.commit({ conditions, ops });
      keyring.adopt(rotation.term, rotation.kek, rotation.op.value, revision);
      return { term: rotation.term, secrets: entries.length };
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= COMMIT_RETRIES) throw err;
      // Another replica rotated the KEK first (shared storage): rotate again from its keyring.
      if (isKeyringConflict(err)) await keyring.reloadWithinRotation();
    }
  }
}
