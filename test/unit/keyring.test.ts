import { expect } from 'chai';
import { readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HushError } from '../../src/errors/index.js';
import { b64, ConflictError, EmbeddedBackend, Keyring, keys, loadSodium, type Sodium } from '../../src/store/index.js';
import { rejection } from '../helpers/assert.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const { KEYRING_KEY } = keys;

/** The HushError a promise rejects with: its code and message. */
async function refusal(promise: Promise<unknown>): Promise<HushError> {
  const err = await rejection(promise);
  expect(err).to.be.instanceOf(HushError);
  return err as HushError;
}

function thrown(fn: () => unknown): HushError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(HushError);
    return err as HushError;
  }
  throw new Error('expected a HushError, but nothing was thrown');
}

describe('keyring', () => {
  let sodium: Sodium;
  let dir: string;
  let keyFile: string;
  /** Engines opened by a test, closed after it even when it fails. */
  let engines: EmbeddedBackend[];
  before(async () => (sodium = await loadSodium()));
  beforeEach(async () => {
    dir = await tempDir();
    keyFile = join(dir, 'master.key');
    engines = [];
  });
  afterEach(async () => {
    for (const engine of engines) await engine.close();
    await removeDir(dir);
  });

  /** Opens the keyring of the data directory as the store does: an engine that has read nothing yet. */
  const openKeyring = async (autolock = false) => {
    const backend = EmbeddedBackend.at({ dir });
    engines.push(backend);
    return { backend, ...(await Keyring.open(sodium, backend, { keyFile, autolock })) };
  };
  /** Closes the engines, as a restart does. */
  const restart = async () => {
    for (const engine of engines.splice(0)) await engine.close();
  };

  describe('with a key file', () => {
    it('creates a 32-byte root key in a 0600 file, and a first key term, unlocked', async () => {
      const { keyring, backend, newUnlockKey } = await openKeyring();
      expect(newUnlockKey).to.equal(undefined);
      expect(keyring.locked).to.equal(false);
      expect(keyring.autolock).to.equal(false);
      expect(keyring.term).to.equal(1);
      expect((await stat(keyFile)).mode & 0o777).to.equal(0o600);
      expect(Buffer.from((await readFile(keyFile, 'utf8')).trim(), 'base64')).to.have.length(32);
      const { term, kek } = keyring.activeKek();
      expect(term).to.equal(1);
      expect(kek).to.have.length(32);
      // The record holds the KEK sealed: neither it nor the root key is readable in it.
      const record = (await backend.get(KEYRING_KEY))!.value;
      expect(JSON.parse(record)).to.include({ format: 1, root: 'file' });
      expect(record).not.to.contain(b64(kek));
      expect(record).not.to.contain((await readFile(keyFile, 'utf8')).trim());
    });

    it('opens again with the same key file to the same KEKs', async () => {
      const first = await openKeyring();
      const kek = Buffer.from(first.keyring.kek(1));
      await restart();
      const { keyring, newUnlockKey } = await openKeyring();
      expect(newUnlockKey).to.equal(undefined);
      expect(keyring.locked).to.equal(false);
      expect(Buffer.from(keyring.kek(1)).equals(kek)).to.equal(true);
    });

    const keyFileRefusals: [string, () => Promise<void>, RegExp][] = [
      ['another key', () => writeFile(keyFile, Buffer.alloc(32, 9).toString('base64') + '\n'), /the key file does not open this store's keyring \(was master\.key replaced\?\)/],
      ['a key of the wrong length', () => writeFile(keyFile, Buffer.alloc(16, 9).toString('base64') + '\n'), /does not hold a 32-byte key/],
      ['no key file', () => unlink(keyFile), /is missing: the store cannot decrypt its data without it/],
    ];
    for (const [what, damage, message] of keyFileRefusals) {
      it(`refuses ${what}, and serves nothing from the log`, async () => {
        await openKeyring();
        await restart();
        const original = await readFile(keyFile, 'utf8');
        await damage();
        const backend = EmbeddedBackend.at({ dir });
        engines.push(backend);
        const err = await refusal(Keyring.open(sodium, backend, { keyFile, autolock: false }));
        expect(err.code).to.equal('internal');
        expect(err.message).to.match(message);
        expect(backend.authenticated).to.equal(false);
        // The right key still opens it: the refusal changed nothing.
        await writeFile(keyFile, original);
        await restart();
        expect((await openKeyring()).keyring.term).to.equal(1);
      });
    }

    it('refuses --autolock for a store that a key file opens', async () => {
      await openKeyring();
      await restart();
      const err = await refusal(openKeyring(true));
      expect(err.code).to.equal('forbidden');
      expect(err.message).to.contain('this store is not autolocked (master.key opens it), but --autolock was given');
    });

    it('refuses to make a new key over records that have no keyring', async () => {
      const db = await EmbeddedBackend.open({ dir, auth: { chain: () => Buffer.alloc(32), snapshot: () => Buffer.alloc(32), value: () => Buffer.alloc(32) } });
      await db.commit({ ops: [{ type: 'put', key: 'secrets/x', value: '{}' }] });
      await db.close();
      const err = await refusal(openKeyring());
      expect(err.message).to.contain('the data directory holds records but no keyring: refusing to make a new key over them');
      expect(await rejection(stat(keyFile))).to.have.property('code', 'ENOENT');
    });
  });

  describe('autolocked', () => {
    it('shows an unlock key once, writes no key file, and is unlocked at creation', async () => {
      const { keyring, newUnlockKey } = await openKeyring(true);
      expect(newUnlockKey).to.match(/^HUSHKEY-1-[A-Za-z0-9_-]{43}$/);
      expect(keyring.autolock).to.equal(true);
      expect(keyring.locked).to.equal(false);
      expect(keyring.term).to.equal(1);
      expect(await rejection(stat(keyFile))).to.have.property('code', 'ENOENT');
    });

    it('is locked after a restart: no key term, no KEK, nothing served, until the unlock key is given', async () => {
      const first = await openKeyring(true);
      const kek = Buffer.from(first.keyring.kek(1));
      await restart();
      const { keyring, backend, newUnlockKey } = await openKeyring();
      expect(newUnlockKey).to.equal(undefined);
      expect(keyring.locked).to.equal(true);
      expect(keyring.term).to.equal(0);
      expect(thrown(() => keyring.kek(1)).code).to.equal('locked');
      expect(thrown(() => keyring.activeKek()).code).to.equal('locked');
      expect(thrown(() => keyring.prepareNewTerm()).code).to.equal('locked');
      expect((await refusal(backend.get(KEYRING_KEY))).code).to.equal('locked');
      await keyring.unlock(first.newUnlockKey!);
      expect(keyring.locked).to.equal(false);
      expect(Buffer.from(keyring.kek(1)).equals(kek)).to.equal(true);
    });

    it('refuses a wrong unlock key and a string that is no unlock key; each changes nothing', async () => {
      const first = await openKeyring(true);
      await restart();
      const { keyring, backend } = await openKeyring();
      const wrong = await refusal(keyring.unlock(`HUSHKEY-1-${'A'.repeat(43)}`));
      expect(wrong.code).to.equal('forbidden');
      expect(wrong.message).to.equal('wrong unlock key');
      const notAKey = await refusal(keyring.unlock('hunter2'));
      expect(notAKey.code).to.equal('forbidden');
      expect(notAKey.message).to.equal('not an unlock key (they start with HUSHKEY-1-)');
      expect(keyring.locked).to.equal(true);
      expect(backend.authenticated).to.equal(false);
      // Whitespace around a pasted key is not part of it.
      await keyring.unlock(`  ${first.newUnlockKey!}\n`);
      expect(keyring.locked).to.equal(false);
    });

    it('takes unlock attempts one at a time: a wrong one queued before the right one fails alone', async () => {
      const first = await openKeyring(true);
      await restart();
      const { keyring } = await openKeyring();
      const [wrong, right] = await Promise.allSettled([keyring.unlock(`HUSHKEY-1-${'B'.repeat(43)}`), keyring.unlock(first.newUnlockKey!)]);
      expect(wrong.status).to.equal('rejected');
      expect((wrong as PromiseRejectedResult).reason).to.have.property('message', 'wrong unlock key');
      expect(right.status).to.equal('fulfilled');
      expect(keyring.locked).to.equal(false);
    });

    it('runs work registered with whenReadable inside the unlock, on the verified log, before whenUnlocked waiters wake', async () => {
      const first = await openKeyring(true);
      await restart();
      const { keyring, backend } = await openKeyring();
      const order: string[] = [];
      const waiter = keyring.whenUnlocked().then(() => order.push('whenUnlocked waiter'));
      const registered = keyring.whenReadable(async () => {
        // The log is verified by now: reads are served.
        order.push(`read task (keyring record at revision ${(await backend.get(KEYRING_KEY))!.modRevision})`);
      });
      await registered;
      expect(order, 'nothing runs before the unlock').to.deep.equal([]);
      await refusal(keyring.unlock(`HUSHKEY-1-${'C'.repeat(43)}`));
      await new Promise((r) => setImmediate(r));
      expect(order, 'nothing runs after a wrong key').to.deep.equal([]);
      await keyring.unlock(first.newUnlockKey!);
      expect(order, 'the read task has run by the time unlock resolves').to.include('read task (keyring record at revision 1)');
      await waiter;
      expect(order).to.deep.equal(['read task (keyring record at revision 1)', 'whenUnlocked waiter']);
    });

    it('stays locked when a whenReadable task fails during the unlock, and runs it again at the next unlock', async () => {
      const first = await openKeyring(true);
      await restart();
      const { keyring } = await openKeyring();
      let attempts = 0;
      await keyring.whenReadable(async () => {
        attempts++;
        if (attempts === 1) throw new Error('migration failed');
      });
      let woken = false;
      void keyring.whenUnlocked().then(() => (woken = true));
      expect((await rejection(keyring.unlock(first.newUnlockKey!))).message).to.equal('migration failed');
      await new Promise((r) => setImmediate(r));
      expect(keyring.locked, 'not half open: locked, its waiters asleep').to.equal(true);
      expect(woken).to.equal(false);
      await keyring.unlock(first.newUnlockKey!);
      expect(attempts).to.equal(2);
      expect(keyring.locked).to.equal(false);
      await new Promise((r) => setImmediate(r));
      expect(woken).to.equal(true);
    });

    it('runs whenReadable work at once when the store is already unlocked', async () => {
      const { keyring } = await openKeyring();
      let ran = false;
      await keyring.whenReadable(async () => {
        ran = true;
      });
      expect(ran).to.equal(true);
      await keyring.whenUnlocked();
    });
  });

  describe('rotation', () => {
    /** What the store does for a rotation with no data keys to re-wrap: commit the new term, adopt it; then drop the old terms, adopt that. */
    const rotate = async (keyring: Keyring, backend: EmbeddedBackend) => {
      const rotation = keyring.prepareNewTerm();
      const added = await backend.commit({ conditions: [rotation.condition], ops: [{ type: 'put', ...rotation.op }] });
      keyring.adoptNewTerm(rotation.term, rotation.kek, rotation.op.value, added);
      const drop = keyring.prepareDropOldTerms();
      const revision = await backend.commit({ conditions: [drop.condition], ops: [{ type: 'put', ...drop.op }] });
      keyring.adoptDroppedOldTerms(drop.op.value, revision);
      return { ...rotation, revision };
    };

    it('prepares the next term with a new KEK beside the old ones, in a record conditioned on the keyring as loaded', async () => {
      const { keyring, backend } = await openKeyring();
      const old = keyring.kek(1);
      const stored = (await backend.get(KEYRING_KEY))!;
      const rotation = keyring.prepareNewTerm();
      expect(rotation.term).to.equal(2);
      expect(rotation.kek).to.have.length(32);
      expect(Buffer.from(rotation.kek).equals(Buffer.from(old))).to.equal(false);
      expect(rotation.op.key).to.equal(KEYRING_KEY);
      expect(rotation.condition).to.deep.equal({ key: KEYRING_KEY, modRevision: stored.modRevision });
      expect(rotation.op.value).not.to.contain(b64(rotation.kek));
      // Preparing changes nothing until it is committed and adopted.
      expect(keyring.term).to.equal(1);
      expect((await backend.get(KEYRING_KEY))!.value).to.equal(stored.value);
    });

    it('between the two steps holds both terms, the new one active, and so does a restart', async () => {
      const { keyring, backend } = await openKeyring();
      const old = Buffer.from(keyring.kek(1));
      const rotation = keyring.prepareNewTerm();
      keyring.adoptNewTerm(rotation.term, rotation.kek, rotation.op.value, await backend.commit({ conditions: [rotation.condition], ops: [{ type: 'put', ...rotation.op }] }));
      expect(keyring.activeKek().term).to.equal(2);
      expect(Buffer.from(keyring.kek(1)).equals(old)).to.equal(true);
      const kek = Buffer.from(rotation.kek);
      await restart();
      const reopened = (await openKeyring()).keyring;
      expect(reopened.term).to.equal(2);
      expect(Buffer.from(reopened.kek(1)).equals(old)).to.equal(true);
      expect(Buffer.from(reopened.kek(2)).equals(kek)).to.equal(true);
    });

    it('adopts a committed rotation: the new term only, the old KEK wiped from memory, kept across a restart', async () => {
      const { keyring, backend } = await openKeyring();
      const old = keyring.kek(1);
      const { kek, revision } = await rotate(keyring, backend);
      expect(keyring.term).to.equal(2);
      expect(Buffer.from(keyring.kek(2)).equals(Buffer.from(kek))).to.equal(true);
      expect(thrown(() => keyring.kek(1)).message).to.equal('key term 1 is not in the keyring');
      expect(Buffer.from(old).equals(Buffer.alloc(32))).to.equal(true);
      expect(keyring.condition()).to.deep.equal({ key: KEYRING_KEY, modRevision: revision });
      const kept = Buffer.from(kek);
      await restart();
      const reopened = (await openKeyring()).keyring;
      expect(reopened.term).to.equal(2);
      expect(Buffer.from(reopened.kek(2)).equals(kept)).to.equal(true);
      expect(thrown(() => reopened.kek(1)).code).to.equal('internal');
    });

    it('keeps the unlock key of an autolocked store across rotations', async () => {
      const first = await openKeyring(true);
      await rotate(first.keyring, first.backend);
      await rotate(first.keyring, first.backend);
      await restart();
      const { keyring } = await openKeyring();
      await keyring.unlock(first.newUnlockKey!);
      expect(keyring.term).to.equal(3);
    });

    it('refuses the second of two rotations prepared from the same keyring (its condition is stale)', async () => {
      const { keyring, backend } = await openKeyring();
      const a = keyring.prepareNewTerm();
      const b = keyring.prepareNewTerm();
      const revision = await backend.commit({ conditions: [a.condition], ops: [{ type: 'put', ...a.op }] });
      keyring.adoptNewTerm(a.term, a.kek, a.op.value, revision);
      expect(await rejection(backend.commit({ conditions: [b.condition], ops: [{ type: 'put', ...b.op }] }))).to.be.instanceOf(ConflictError);
      expect(Buffer.from(keyring.kek(2)).equals(Buffer.from(a.kek))).to.equal(true);
      expect((await backend.get(KEYRING_KEY))!.value).to.equal(a.op.value);
    });

    it('names a term that is not in the keyring; a newer one as a conflict (another replica rotated the KEK: reload and try again)', async () => {
      const { keyring, backend } = await openKeyring();
      await rotate(keyring, backend);
      const older = thrown(() => keyring.kek(1));
      expect(older.code).to.equal('internal');
      expect(older.message).to.equal('key term 1 is not in the keyring');
      const newer = thrown(() => keyring.kek(9));
      expect(newer.code).to.equal('conflict');
      expect(newer.message).to.equal("key term 9 is newer than this store's keyring (term 2): the KEK was rotated by another replica; try again");
    });
  });
});
