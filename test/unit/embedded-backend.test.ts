import { expect } from 'chai';
import { appendFile, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, CorruptionError, EmbeddedBackend } from '../../src/store/index.js';
import { rejection } from '../helpers/assert.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const put = (key: string, value: string) => ({ ops: [{ type: 'put' as const, key, value }] });

async function segmentPath(dir: string): Promise<string> {
  const segments = (await readdir(dir)).filter((f) => f.startsWith('wal-')).sort();
  return join(dir, segments.at(-1)!);
}

describe('embedded storage engine', () => {
  let dir: string;
  beforeEach(async () => (dir = await tempDir()));
  afterEach(async () => removeDir(dir));

  it('assigns increasing revisions and survives a reopen', async () => {
    const db = await EmbeddedBackend.open({ dir });
    expect(await db.commit(put('a', '1'))).to.equal(1);
    expect(await db.commit(put('b', '2'))).to.equal(2);
    expect(await db.commit({ ops: [{ type: 'delete', key: 'a' }] })).to.equal(3);
    await db.close();
    const again = await EmbeddedBackend.open({ dir });
    expect(again.revision()).to.equal(3);
    expect(await again.get('a')).to.equal(undefined);
    expect(await again.get('b')).to.deep.equal({ key: 'b', value: '2', modRevision: 2 });
    await again.close();
  });

  it('checks conditions against the latest state, including writes still in flight', async () => {
    const db = await EmbeddedBackend.open({ dir });
    const first = db.commit({ conditions: [{ key: 'x', modRevision: 0 }], ...put('x', 'first') });
    const second = rejection(db.commit({ conditions: [{ key: 'x', modRevision: 0 }], ...put('x', 'second') }));
    expect(await first).to.equal(1);
    expect(await second).to.be.instanceOf(ConflictError);
    expect((await db.get('x'))?.value).to.equal('first');
    await db.close();
  });

  it('group-commits concurrent writes: many commits share one fdatasync', async () => {
    const db = await EmbeddedBackend.open({ dir });
    await Promise.all(Array.from({ length: 256 }, (_, i) => db.commit(put(`k${i}`, 'v'.repeat(200)))));
    expect(db.stats.commits).to.equal(256);
    expect(db.stats.flushes).to.be.lessThan(64);
    expect((await db.list('k')).length).to.equal(256);
    await db.close();
  });

  it('tells watchers about each durable commit in order', async () => {
    const db = await EmbeddedBackend.open({ dir });
    const seen: number[] = [];
    db.watch((event) => seen.push(event.revision));
    await Promise.all([db.commit(put('a', '1')), db.commit(put('b', '2')), db.commit(put('c', '3'))]);
    expect(seen).to.deep.equal([1, 2, 3]);
    await db.close();
  });

  it('cuts off a torn tail (a write interrupted by a crash) and keeps every complete record', async () => {
    const db = await EmbeddedBackend.open({ dir });
    for (let i = 0; i < 10; i++) await db.commit(put(`k${i}`, `v${i}`));
    await db.close();
    const wal = await segmentPath(dir);
    const sizeBefore = (await stat(wal)).size;
    // Half a record header plus junk, as a crash mid-write leaves it.
    await appendFile(wal, Buffer.from([0, 0, 0, 50, 0xff, 0xff, 0xff]));
    const torn: number[] = [];
    const again = await EmbeddedBackend.open({ dir, onTornTail: (_f, bytes) => torn.push(bytes) });
    expect(torn).to.deep.equal([7]);
    expect(again.revision()).to.equal(10);
    expect((await stat(wal)).size).to.equal(sizeBefore);
    expect(await again.commit(put('after', 'ok'))).to.equal(11);
    await again.close();
    const third = await EmbeddedBackend.open({ dir });
    expect((await third.get('after'))?.value).to.equal('ok');
    await third.close();
  });

  it('treats a last record whose bytes were only partly written as torn', async () => {
    const db = await EmbeddedBackend.open({ dir });
    for (let i = 0; i < 5; i++) await db.commit(put(`k${i}`, 'x'.repeat(100)));
    await db.close();
    const wal = await segmentPath(dir);
    const bytes = await readFile(wal);
    await writeFile(wal, bytes.subarray(0, bytes.length - 30));
    const again = await EmbeddedBackend.open({ dir });
    expect(again.revision()).to.equal(4);
    await again.close();
  });

  it('refuses to start when a record in the middle of the log is damaged, naming file and offset', async () => {
    const db = await EmbeddedBackend.open({ dir });
    for (let i = 0; i < 20; i++) await db.commit(put(`k${i}`, 'x'.repeat(100)));
    await db.close();
    const wal = await segmentPath(dir);
    const bytes = await readFile(wal);
    bytes[Math.floor(bytes.length / 2)] ^= 0x20;
    await writeFile(wal, bytes);
    const err = await rejection(EmbeddedBackend.open({ dir }));
    expect(err).to.be.instanceOf(CorruptionError);
    expect((err as Error).message).to.match(/wal-\d+\.log: .* at offset \d+; refusing to start/);
  });

  it('snapshots, drops old segments, and recovers from snapshot plus log', async () => {
    const db = await EmbeddedBackend.open({ dir, snapshotAfterBytes: 4096 });
    for (let i = 0; i < 100; i++) await db.commit(put(`k${i % 30}`, `value-${i}`));
    expect(db.stats.snapshots).to.be.greaterThan(0);
    await db.close();
    const files = await readdir(dir);
    expect(files.filter((f) => f.startsWith('snapshot-'))).to.have.length(1);
    expect(files.filter((f) => f.startsWith('wal-'))).to.have.length(1);
    const again = await EmbeddedBackend.open({ dir, snapshotAfterBytes: 4096 });
    expect(again.revision()).to.equal(100);
    expect((await again.get('k9'))?.value).to.equal('value-99');
    expect(await again.list('k')).to.have.length(30);
    await again.close();
  });

  it('refuses a snapshot that fails its checksum', async () => {
    const db = await EmbeddedBackend.open({ dir, snapshotAfterBytes: 1024 });
    for (let i = 0; i < 40; i++) await db.commit(put(`k${i}`, `value-${i}`));
    await db.close();
    const snapshot = join(dir, (await readdir(dir)).find((f) => f.startsWith('snapshot-'))!);
    const text = await readFile(snapshot, 'utf8');
    await writeFile(snapshot, text.replace('value-1"', 'value-X"'));
    const err = await rejection(EmbeddedBackend.open({ dir }));
    expect(err).to.be.instanceOf(CorruptionError);
    expect(err.message).to.contain('snapshot fails its checksum');
  });
});
