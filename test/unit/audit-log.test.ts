/**
 * The store's audit log on the real engine: appends through the backend,
 * chained with the key derived from the root key, and every kind of
 * tampering done as an attacker with write access to the backend but no key
 * would do it (plain backend commits), found by `verify` at the right record.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { AuditLog, keys, openStore, type OpenedStore } from '../../src/store/index.js';
import type { AuditEntry, AuditRecord } from '../../src/rotation/index.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const entry = (i: number): AuditEntry => ({ time: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(), actor: 'local-root', action: 'secret.rotate', object: `secret/s${i}`, result: 'ok' });

describe('audit log in the store', () => {
  let dir: string;
  let store: OpenedStore;
  beforeEach(async () => {
    dir = await tempDir();
    store = await openStore({ dataDir: join(dir, 'data') });
    for (let i = 1; i <= 6; i++) await store.audit.append(entry(i));
  });
  afterEach(async () => {
    await store.backend.close();
    await removeDir(dir);
  });

  const read = async (seq: number) => JSON.parse((await store.backend.get(keys.auditKey(seq)))!.value) as AuditRecord;
  const put = (seq: number, value: unknown) => store.backend.commit({ ops: [{ type: 'put', key: keys.auditKey(seq), value: JSON.stringify(value) }] });
  const drop = (...seqs: number[]) => store.backend.commit({ ops: seqs.map((seq) => ({ type: 'delete' as const, key: keys.auditKey(seq) })) });
  /** A verifier that did not see the appends (another store process, or this one after a restart): only the stored log and head speak. */
  const fresh = () => new AuditLog(store.backend, store.keyring);

  it('appends one numbered, chained sequence and verifies it, and lists by time and actor', async () => {
    const verdict = await store.audit.verify();
    expect(verdict).to.deep.include({ ok: true, records: 6, problems: [] });
    expect(verdict.head?.seq).to.equal(6);
    expect((await store.audit.list()).map((r) => r.seq)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect((await store.audit.list({ since: entry(5).time })).map((r) => r.seq)).to.deep.equal([5, 6]);
    expect(await store.audit.list({ actor: 'scheduler' })).to.deep.equal([]);
    expect((await store.audit.list({ limit: 2 })).map((r) => r.seq)).to.deep.equal([5, 6]);
  });

  it('stays one sequence when two store processes append at once (the head commit is conditional)', async () => {
    const other = new AuditLog(store.backend, store.keyring);
    await Promise.all([...Array.from({ length: 10 }, (_, i) => store.audit.append(entry(10 + i))), ...Array.from({ length: 10 }, (_, i) => other.append(entry(30 + i)))]);
    const all = await store.audit.list();
    expect(all.map((r) => r.seq)).to.deep.equal(Array.from({ length: 26 }, (_, i) => i + 1));
    expect((await store.audit.verify()).ok).to.equal(true);
  });

  it('finds an edited record (its result changed through the backend)', async () => {
    await put(3, { ...(await read(3)), result: 'forbidden' });
    const v = await fresh().verify();
    expect(v.ok).to.equal(false);
    expect(v.problems.map((p) => [p.seq, p.problem])).to.deep.equal([[3, 'edited']]);
  });

  it('finds a removed record', async () => {
    await drop(4);
    expect((await fresh().verify()).problems.map((p) => [p.seq, p.problem])).to.deep.equal([[4, 'removed']]);
  });

  it('finds two records swapped', async () => {
    const [two, three] = [await read(2), await read(3)];
    await put(2, three);
    await put(3, two);
    expect((await fresh().verify()).problems.map((p) => [p.seq, p.problem])).to.deep.equal([
      [2, 'reordered'],
      [3, 'reordered'],
    ]);
  });

  it('finds a cut-off tail, and a tail cut off with its head rewound while the store runs', async () => {
    await drop(5, 6);
    expect((await fresh().verify()).problems.map((p) => [p.seq, p.problem])).to.deep.equal([[5, 'truncated']]);
    const four = await read(4);
    await store.backend.commit({ ops: [{ type: 'put', key: keys.AUDIT_HEAD_KEY, value: JSON.stringify({ seq: 4, tag: four.tag }) }] });
    // The running store wrote up to 6: it knows.
    expect((await store.audit.verify()).problems.map((p) => [p.seq, p.problem])).to.deep.equal([[5, 'truncated']]);
  });

  it('chains with a key derived from the root key: the same records do not verify under another store\'s key', async () => {
    const otherDir = await tempDir();
    const other = await openStore({ dataDir: join(otherDir, 'data') });
    try {
      const records = await store.backend.list(keys.AUDIT_PREFIX);
      const head = await store.backend.get(keys.AUDIT_HEAD_KEY);
      await other.backend.commit({ ops: [...records.map((r) => ({ type: 'put' as const, key: r.key, value: r.value })), { type: 'put', key: keys.AUDIT_HEAD_KEY, value: head!.value }] });
      const v = await other.audit.verify();
      expect(v.ok).to.equal(false);
      expect(v.problems[0]).to.include({ seq: 1, problem: 'edited' });
    } finally {
      await other.backend.close();
      await removeDir(otherDir);
    }
  });
});
