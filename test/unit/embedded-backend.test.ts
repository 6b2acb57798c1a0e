import { expect } from 'chai';
import { appendFile, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, CorruptionError, deriveLogAuth, EmbeddedBackend, loadSodium, type LogAuth } from '../../src/store/index.js';
import { encodeCommit } from '../../src/store/commit-codec.js';
import { rejection } from '../helpers/assert.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { appendUnkeyedCommit, readRecords, rewriteUnkeyed, unkeyedSegment, unkeyedSnapshot } from '../helpers/unkeyed-log.js';

const put = (key: string, value: string) => ({ ops: [{ type: 'put' as const, key, value }] });

async function segmentPath(dir: string): Promise<string> {
  const segments = (await readdir(dir)).filter((f) => f.startsWith('wal-')).sort();
  return join(dir, segments.at(-1)!);
}

describe('embedded storage engine', () => {
  let dir: string;
  let auth: LogAuth;
  before(async () => (auth = deriveLogAuth(await loadSodium(), Buffer.alloc(32, 7))));
  beforeEach(async () => (dir = await tempDir()));
  afterEach(async () => removeDir(dir));

  it('assigns increasing revisions and survives a reopen', async () => {
    const db = await EmbeddedBackend.open({ auth, dir });
    expect(await db.commit(put('a', '1'))).to.equal(1);
    expect(await db.commit(put('b', '2'))).to.equal(2);
    expect(await db.commit({ ops: [{ type: 'delete', key: 'a' }] })).to.equal(3);
    await db.close();
    const again = await EmbeddedBackend.open({ auth, dir });
    expect(again.revision()).to.equal(3);
    expect(await again.get('a')).to.equal(undefined);
    expect(await again.get('b')).to.deep.equal({ key: 'b', value: '2', modRevision: 2 });
    await again.close();
  });

  it('checks conditions against the latest state, including writes still in flight', async () => {
    const db = await EmbeddedBackend.open({ auth, dir });
    const first = db.commit({ conditions: [{ key: 'x', modRevision: 0 }], ...put('x', 'first') });
    const second = rejection(db.commit({ conditions: [{ key: 'x', modRevision: 0 }], ...put('x', 'second') }));
    expect(await first).to.equal(1);
    expect(await second).to.be.instanceOf(ConflictError);
    expect((await db.get('x'))?.value).to.equal('first');
    await db.close();
  });

  it('group-commits concurrent writes: many commits share one fdatasync', async () => {
    const db = await EmbeddedBackend.open({ auth, dir });
    await Promise.all(Array.from({ length: 256 }, (_, i) => db.commit(put(`k${i}`, 'v'.repeat(200)))));
    expect(db.stats.commits).to.equal(256);
    expect(db.stats.flushes).to.be.lessThan(64);
    expect((await db.list('k')).length).to.equal(256);
    await db.close();
  });

  it('tells watchers about each durable commit in order', async () => {
    const db = await EmbeddedBackend.open({ auth, dir });
    const seen: number[] = [];
    db.watch((event) => seen.push(event.revision));
    await Promise.all([db.commit(put('a', '1')), db.commit(put('b', '2')), db.commit(put('c', '3'))]);
    expect(seen).to.deep.equal([1, 2, 3]);
    await db.close();
  });

  it('acknowledges a commit and tells the other watchers when one watcher throws', async () => {
    const db = await EmbeddedBackend.open({ auth, dir });
    const seen: number[] = [];
    db.watch(() => {
      throw new Error('a broken watcher');
    });
    db.watch((event) => seen.push(event.revision));
    expect(await db.commit(put('a', '1'))).to.equal(1);
    expect(await db.commit(put('b', '2'))).to.equal(2);
    expect(seen).to.deep.equal([1, 2]);
    await db.close();
  });

  it('cuts off a torn tail (a write interrupted by a crash) and keeps every complete record', async () => {
    const db = await EmbeddedBackend.open({ auth, dir });
    for (let i = 0; i < 10; i++) await db.commit(put(`k${i}`, `v${i}`));
    await db.close();
    const wal = await segmentPath(dir);
    const sizeBefore = (await stat(wal)).size;
    // Half a record header plus junk, as a crash mid-write leaves it.
    await appendFile(wal, Buffer.from([0, 0, 0, 50, 0xff, 0xff, 0xff]));
    const torn: number[] = [];
    const again = await EmbeddedBackend.open({ auth, dir, onTornTail: (_f, bytes) => torn.push(bytes) });
    expect(torn).to.deep.equal([7]);
    expect(again.revision()).to.equal(10);
    expect((await stat(wal)).size).to.equal(sizeBefore);
    expect(await again.commit(put('after', 'ok'))).to.equal(11);
    await again.close();
    const third = await EmbeddedBackend.open({ auth, dir });
    expect((await third.get('after'))?.value).to.equal('ok');
    await third.close();
  });

  it('treats a last record whose bytes were only partly written as torn', async () => {
    const db = await EmbeddedBackend.open({ auth, dir });
    for (let i = 0; i < 5; i++) await db.commit(put(`k${i}`, 'x'.repeat(100)));
    await db.close();
    const wal = await segmentPath(dir);
    const bytes = await readFile(wal);
    await writeFile(wal, bytes.subarray(0, bytes.length - 30));
    const again = await EmbeddedBackend.open({ auth, dir });
    expect(again.revision()).to.equal(4);
    await again.close();
  });

  it('refuses to start when a record in the middle of the log is damaged, naming file and offset', async () => {
    const db = await EmbeddedBackend.open({ auth, dir });
    for (let i = 0; i < 20; i++) await db.commit(put(`k${i}`, 'x'.repeat(100)));
    await db.close();
    const wal = await segmentPath(dir);
    const bytes = await readFile(wal);
    bytes[Math.floor(bytes.length / 2)] ^= 0x20;
    await writeFile(wal, bytes);
    const err = await rejection(EmbeddedBackend.open({ auth, dir }));
    expect(err).to.be.instanceOf(CorruptionError);
    expect((err as Error).message).to.match(/wal-\d+\.log: .* at offset \d+; refusing to start/);
  });

  it('snapshots, drops old segments, and recovers from snapshot plus log', async () => {
    const db = await EmbeddedBackend.open({ auth, dir, snapshotAfterBytes: 4096 });
    for (let i = 0; i < 100; i++) await db.commit(put(`k${i % 30}`, `value-${i}`));
    expect(db.stats.snapshots).to.be.greaterThan(0);
    await db.close();
    const files = await readdir(dir);
    expect(files.filter((f) => f.startsWith('snapshot-'))).to.have.length(1);
    expect(files.filter((f) => f.startsWith('wal-'))).to.have.length(1);
    const again = await EmbeddedBackend.open({ auth, dir, snapshotAfterBytes: 4096 });
    expect(again.revision()).to.equal(100);
    expect((await again.get('k9'))?.value).to.equal('value-99');
    expect(await again.list('k')).to.have.length(30);
    await again.close();
  });

  it('refuses a snapshot that fails its authentication', async () => {
    const db = await EmbeddedBackend.open({ auth, dir, snapshotAfterBytes: 1024 });
    for (let i = 0; i < 40; i++) await db.commit(put(`k${i}`, `value-${i}`));
    await db.close();
    const snapshot = join(dir, (await readdir(dir)).find((f) => f.startsWith('snapshot-'))!);
    const text = await readFile(snapshot, 'utf8');
    await writeFile(snapshot, text.replace('value-1"', 'value-X"'));
    const err = await rejection(EmbeddedBackend.open({ auth, dir }));
    expect(err).to.be.instanceOf(CorruptionError);
    expect(err.message).to.contain('snapshot fails its authentication');
  });

  describe('keyed log', () => {
    const fill = async (n: number, options: { snapshotAfterBytes?: number } = {}) => {
      const db = await EmbeddedBackend.open({ auth, dir, ...options });
      for (let i = 0; i < n; i++) await db.commit(put(`k${i}`, `value-${i}`));
      await db.close();
    };
    const magicOf = async (file: string) => (await readFile(join(dir, file))).subarray(0, 8).toString('latin1');

    it('refuses a whole record appended without the key, even at the end of the log: it is not a torn tail', async () => {
      await fill(5);
      const wal = await segmentPath(dir);
      const offset = await appendUnkeyedCommit(wal, [{ type: 'delete', key: 'k1' }]);
      const err = await rejection(EmbeddedBackend.open({ auth, dir }));
      expect(err).to.be.instanceOf(CorruptionError);
      expect(err.message).to.equal(
        `${wal}: record fails its authentication (written without this store's key, or damaged) at offset ${offset}; refusing to start. Restore the data directory from a backup (or move the file aside to inspect it).`,
      );
    });

    it('refuses a record edited in the middle and the chain recomputed with SHA-256', async () => {
      await fill(10);
      const wal = await segmentPath(dir);
      const { records } = await readRecords(wal);
      await rewriteUnkeyed(wal, (payloads) => payloads.map((p, i) => (i === 5 ? encodeCommit(6, [{ type: 'put', key: 'k5', value: 'forged' }]) : p)));
      const err = await rejection(EmbeddedBackend.open({ auth, dir }));
      expect(err).to.be.instanceOf(CorruptionError);
      expect(err.message).to.contain(`record fails its authentication (written without this store's key, or damaged) at offset ${records[0].offset}`);
    });

    it('refuses a log written under another key', async () => {
      await fill(3);
      const other = deriveLogAuth(await loadSodium(), Buffer.alloc(32, 8));
      expect(await rejection(EmbeddedBackend.open({ auth: other, dir }))).to.be.instanceOf(CorruptionError);
    });

    it('cuts off a last record that ends in zeros (blocks a power loss left unwritten) as a torn tail', async () => {
      await fill(5);
      const wal = await segmentPath(dir);
      const bytes = await readFile(wal);
      bytes.fill(0, bytes.length - 4);
      await writeFile(wal, bytes);
      const torn: number[] = [];
      const again = await EmbeddedBackend.open({ auth, dir, onTornTail: (_f, n) => torn.push(n) });
      expect(again.revision()).to.equal(4);
      expect(torn).to.have.length(1);
      await again.close();
    });

    it('serves nothing before the log is authenticated; peek reads one key unverified and names where', async () => {
      await fill(3);
      const engine = EmbeddedBackend.at({ dir });
      const peeked = await engine.peek('k1');
      expect(peeked).to.deep.include({ value: 'value-1', file: await segmentPath(dir), hasData: true });
      expect(await engine.peek('missing')).to.deep.equal({ hasData: true });
      expect((await rejection(engine.get('k1'))).message).to.match(/locked/);
      expect(() => engine.commit(put('x', 'y'))).to.throw(/locked/);
      await engine.authenticate(auth, { allowUnkeyed: false });
      expect((await engine.get('k1'))?.value).to.equal('value-1');
      await engine.close();
    });

    it('upgrades an unkeyed directory when allowed: verified, rewritten keyed (snapshot and segment), keyed from then on', async () => {
      const seg1 = unkeyedSegment(1, [[{ type: 'put', key: 'a', value: '1' }], [{ type: 'put', key: 'b', value: '2' }]]);
      await writeFile(join(dir, 'snapshot-00000000000000000002.json'), unkeyedSnapshot(2, seg1.lastTag, [['a', { value: '1', modRevision: 1 }], ['b', { value: '2', modRevision: 2 }]]));
      await writeFile(join(dir, 'wal-00000000000000000003.log'), unkeyedSegment(3, [[{ type: 'delete', key: 'a' }], [{ type: 'put', key: 'c', value: '3' }]], seg1.lastTag).bytes);
      const upgrades: number[] = [];
      const db = await EmbeddedBackend.open({ auth, dir, allowUnkeyed: true, onUpgrade: (rev) => upgrades.push(rev) });
      expect(upgrades).to.deep.equal([4]);
      expect(db.revision()).to.equal(4);
      expect((await db.list('')).map((e) => [e.key, e.value, e.modRevision])).to.deep.equal([['b', '2', 2], ['c', '3', 4]]);
      expect(await db.commit(put('d', '4'))).to.equal(5);
      await db.close();

      const files = (await readdir(dir)).sort();
      expect(files).to.deep.equal(['snapshot-00000000000000000004.json', 'wal-00000000000000000005.log']);
      expect(JSON.parse(await readFile(join(dir, files[0]), 'utf8'))).to.have.keys('format', 'revision', 'chainHash', 'entries', 'mac');
      expect(await magicOf(files[1])).to.equal('HUSHWAL2');

      const again = await EmbeddedBackend.open({ auth, dir });
      expect((await again.get('d'))?.value).to.equal('4');
      await again.close();
      await appendUnkeyedCommit(join(dir, files[1]), [{ type: 'put', key: 'a', value: 'forged' }]);
      expect(await rejection(EmbeddedBackend.open({ auth, dir }))).to.be.instanceOf(CorruptionError);
    });

    it('refuses an unkeyed directory when not allowed (the keyring says the log is keyed): no downgrade', async () => {
      await writeFile(join(dir, 'wal-00000000000000000001.log'), unkeyedSegment(1, [[{ type: 'put', key: 'a', value: '1' }]]).bytes);
      const err = await rejection(EmbeddedBackend.open({ auth, dir }));
      expect(err).to.be.instanceOf(CorruptionError);
      expect(err.message).to.contain('unkeyed format of before, but this store\'s keyring says its log is keyed');
      expect(await magicOf('wal-00000000000000000001.log')).to.equal('HUSHWAL1');
    });

    it('refuses a snapshot rewritten in the unkeyed format with a correct SHA-256 checksum', async () => {
      await fill(40, { snapshotAfterBytes: 1024 });
      const name = (await readdir(dir)).find((f) => f.startsWith('snapshot-'))!;
      const snap = JSON.parse(await readFile(join(dir, name), 'utf8')) as { revision: number; chainHash: string; entries: [string, { value: string; modRevision: number }][] };
      const forged = snap.entries.map(([k, v]): [string, { value: string; modRevision: number }] => [k, k === 'k1' ? { ...v, value: 'forged' } : v]);
      await writeFile(join(dir, name), unkeyedSnapshot(snap.revision, Buffer.from(snap.chainHash, 'hex'), forged));
      const err = await rejection(EmbeddedBackend.open({ auth, dir }));
      expect(err).to.be.instanceOf(CorruptionError);
      expect(err.message).to.contain(name);
    });

    it('refuses unkeyed records after a keyed snapshot even when unkeyed files would be allowed', async () => {
      await fill(40, { snapshotAfterBytes: 1024 });
      const wal = await segmentPath(dir);
      const { header } = await readRecords(wal);
      const start = Number(header.readBigUInt64BE(8));
      await writeFile(wal, unkeyedSegment(start, [[{ type: 'put', key: 'k1', value: 'forged' }]], header.subarray(16, 48)).bytes);
      const err = await rejection(EmbeddedBackend.open({ auth, dir, allowUnkeyed: true }));
      expect(err.message).to.contain('unkeyed record after a keyed snapshot');
    });

    it('finishes an upgrade interrupted after its snapshot: an empty unkeyed segment left behind is removed', async () => {
      const seg1 = unkeyedSegment(1, [[{ type: 'put', key: 'a', value: '1' }]]);
      await writeFile(join(dir, 'snapshot-00000000000000000001.json'), unkeyedSnapshot(1, seg1.lastTag, [['a', { value: '1', modRevision: 1 }]]));
      const emptyUnkeyed = unkeyedSegment(2, [], seg1.lastTag).bytes;
      await writeFile(join(dir, 'wal-00000000000000000002.log'), emptyUnkeyed);
      await (await EmbeddedBackend.open({ auth, dir, allowUnkeyed: true })).close();
      // As if the crash came after the keyed snapshot, before the unkeyed segment was removed and the keyed one made.
      await unlink(join(dir, 'wal-00000000000000000002.log'));
      await writeFile(join(dir, 'wal-00000000000000000002.log'), emptyUnkeyed);
      const db = await EmbeddedBackend.open({ auth, dir });
      expect((await db.get('a'))?.value).to.equal('1');
      expect(await db.commit(put('b', '2'))).to.equal(2);
      await db.close();
      expect(await magicOf('wal-00000000000000000002.log')).to.equal('HUSHWAL2');
    });
  });
});
