/**
 * KEK rotation (`hush key rotate`), next to the keyring as Vault keeps
 * Rotate on its barrier: a new key term, every data key re-wrapped under it
 * (the ciphertext of the values is untouched), and old terms leave the
 * keyring with the commit of the re-wrapped records.
 *
 * Two commits, because replicas on shared storage seal without this
 * process's gate: a value another replica commits while this one re-wraps
 * would otherwise stay sealed under a term that is then dropped.
 *   1. The keyring gains the new term, made active; old terms stay. Every
 *      seal is conditioned on the keyring, so from here no replica commits
 *      a value under an older term (they reload and seal under the new one).
 *   2. Every value still under an older term, listed after step 1, is
 *      re-wrapped, and the keyring drops the old terms, in one transaction
 *      conditioned on each of those records and on the keyring: a record
 *      changed meanwhile makes it list and re-wrap again.
 * A crash between the two leaves the keyring holding both terms: every value
 * reads, and the next rotation re-wraps what is left.
 */
import { ConflictError, type Backend, type KvCondition, type KvOp } from './backend.js';
import type { Envelope, SealedValue } from './envelope.js';
import { SEALED_PREFIX, SECRET_PREFIX } from './keys.js';
import { isKeyringConflict, type Keyring } from './keyring.js';
import { sealedBinding, type SecretRecord } from './secrets.js';

const COMMIT_RETRIES = 5;

export async function rotateKek(backend: Backend, keyring: Keyring, envelope: Envelope): Promise<{ term: number; secrets: number }> {
  return keyring.rotating(async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        const added = keyring.prepareNewTerm();
        const revision = await backend.commit({ conditions: [added.condition], ops: [{ type: 'put', ...added.op }] });
        keyring.adoptNewTerm(added.term, added.kek, added.op.value, revision);
        return { term: added.term, secrets: await rewrapOlderTerms(backend, keyring, envelope) };
      } catch (err) {
        if (!isKeyringConflict(err) || attempt >= COMMIT_RETRIES) throw err;
        // Another replica rotated the KEK first (shared storage): rotate again from its keyring.
        await keyring.reloadWithinRotation();
      }
    }
  });
}

/** Step 2: re-wraps every value not under the active term and drops the older terms. Resolves with the number of secrets. */
async function rewrapOlderTerms(backend: Backend, keyring: Keyring, envelope: Envelope): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const { term, kek } = keyring.activeKek();
    const drop = keyring.prepareDropOldTerms();
    const entries = await backend.list(SECRET_PREFIX);
    const conditions: KvCondition[] = [drop.condition];
    const ops: KvOp[] = [{ type: 'put', ...drop.op }];
    for (const entry of entries) {
      const record = JSON.parse(entry.value) as SecretRecord;
      if (record.versions.every((v) => v.term === term)) continue;
      const versions = record.versions.map((v) => (v.term === term ? v : { ...v, ...envelope.rewrap(v, { id: record.id, name: record.name, version: v.version }, keyring.kek(v.term), kek, term) }));
      conditions.push({ key: entry.key, modRevision: entry.modRevision });
      ops.push({ type: 'put', key: entry.key, value: JSON.stringify({ ...record, versions }) });
    }
    for (const entry of await backend.list(SEALED_PREFIX)) {
      const sealed = JSON.parse(entry.value) as SealedValue;
      if (sealed.term === term) continue;
      const name = entry.key.slice(SEALED_PREFIX.length);
      const rewrapped = envelope.rewrap(sealed, sealedBinding(name), keyring.kek(sealed.term), kek, term);
      conditions.push({ key: entry.key, modRevision: entry.modRevision });
      ops.push({ type: 'put', key: entry.key, value: JSON.stringify(rewrapped) });
    }
    try {
      const revision = await backend.commit({ conditions, ops });
      keyring.adoptDroppedOldTerms(drop.op.value, revision);
      return entries.length;
    } catch (err) {
      // A record changed meanwhile (a write through another replica): list and re-wrap again. The keyring changing is for the caller.
      if (!(err instanceof ConflictError) || isKeyringConflict(err) || attempt >= COMMIT_RETRIES) throw err;
    }
  }
}
