import { expect } from 'chai';
import { cp, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HushError } from '../../src/errors/index.js';
import { openStore, type OpenedStore } from '../../src/store/index.js';
import { rejection } from '../helpers/assert.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { appendUnkeyedCommit, lastSegment, unkeyedSegment } from '../helpers/unkeyed-log.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const err = await rejection(promise);
  expect(err).to.be.instanceOf(HushError);
  return (err as HushError).code;
}

describe('secret store', () => {
  let dir: string;
  let store: OpenedStore;
  beforeEach(async () => {
    dir = await tempDir();
    store = await openStore({ dataDir: dir });
  });
  afterEach(async () => {
    await store.backend.close();
    await removeDir(dir);
  });

  it('creates, lists, inspects, reveals and removes a secret', async () => {
    const created = await store.secrets.create('db_password', bytes('hunter2'), { env: 'dev' });
    expect(created.id).to.match(/^[a-z0-9]{25}$/);
    expect(created.version).to.equal(1);
    expect((await store.secrets.list()).map((s) => s.name)).to.deep.equal(['db_password']);
    const detail = await store.secrets.inspect(created.id);
    expect(detail).to.include({ name: 'db_password', version: 1 });
    expect(detail.labels).to.deep.equal({ env: 'dev' });
    expect(JSON.stringify(detail)).not.to.contain('hunter2');
    expect(text((await store.secrets.reveal('db_password')).data)).to.equal('hunter2');
    await store.secrets.remove('db_password');
    expect(await codeOf(store.secrets.inspect('db_password'))).to.equal('not_found');
    expect(await codeOf(store.secrets.inspect(created.id))).to.equal('not_found');
  });

  it('refuses a duplicate name, a bad name, an empty or oversized value', async () => {
    await store.secrets.create('a', bytes('1'));
    expect(await codeOf(store.secrets.create('a', bytes('2')))).to.equal('conflict');
    expect(await codeOf(store.secrets.create('../etc', bytes('2')))).to.equal('invalid_name');
    expect(await codeOf(store.secrets.create('x'.repeat(65), bytes('2')))).to.equal('invalid_name');
    expect(await codeOf(store.secrets.create('b', new Uint8Array(0)))).to.equal('bad_request');
    expect(await codeOf(store.secrets.create('c', new Uint8Array(500 * 1024 + 1)))).to.equal('too_large');
    await store.secrets.create('d', new Uint8Array(500 * 1024));
    expect(text((await store.secrets.reveal('a')).data)).to.equal('1');
  });

  it('keeps every version readable after rotations', async () => {
    await store.secrets.create('token', bytes('v1'));
    expect((await store.secrets.rotate('token', bytes('v2'))).version).to.equal(2);
    expect((await store.secrets.rotate('token', bytes('v3'))).version).to.equal(3);
    expect(text((await store.secrets.reveal('token')).data)).to.equal('v3');
    expect(text((await store.secrets.reveal('token', 1)).data)).to.equal('v1');
    expect((await store.secrets.inspect('token')).versions.map((v) => v.version)).to.deep.equal([1, 2, 3]);
  });

  it('rotates the KEK: every value stays readable, old key terms are gone, writes racing it are not lost', async () => {
    for (let i = 0; i < 20; i++) await store.secrets.create(`s${i}`, bytes(`value-${i}`));
    const racing = Array.from({ length: 10 }, (_, i) => store.secrets.create(`race${i}`, bytes(`race-${i}`)));
    const rotation = store.rotateKek();
    const more = Array.from({ length: 10 }, (_, i) => store.secrets.create(`late${i}`, bytes(`late-${i}`)));
    await Promise.all([...racing, rotation, ...more]);
    expect(store.keyring.term).to.equal(2);
    await store.backend.close();
    store = await openStore({ dataDir: dir });
    for (let i = 0; i < 20; i++) expect(text((await store.secrets.reveal(`s${i}`)).data)).to.equal(`value-${i}`);
    for (let i = 0; i < 10; i++) expect(text((await store.secrets.reveal(`race${i}`)).data)).to.equal(`race-${i}`);
    for (let i = 0; i < 10; i++) expect(text((await store.secrets.reveal(`late${i}`)).data)).to.equal(`late-${i}`);
    expect(() => store.keyring.kek(1)).to.throw(/term 1/);
  });

  it('replaces labels only at the revision the caller read (Docker\'s Version.Index), leaving the value and version alone', async () => {
    await store.secrets.create('tls', bytes('key-bytes'), { tier: 'web' });
    const read = await store.secrets.getRevisioned('tls');
    expect((await store.secrets.listRevisioned()).map((s) => s.revision)).to.deep.equal([read.revision]);
    const updated = await store.secrets.replaceLabels('tls', { tier: 'edge' }, read.revision);
    expect(updated.revision).to.be.above(read.revision);
    expect(updated).to.include({ version: 1 });
    expect((await store.secrets.inspect('tls')).labels).to.deep.equal({ tier: 'edge' });
    expect(text((await store.secrets.reveal('tls')).data)).to.equal('key-bytes');

    const before = store.backend.revision();
    expect(await codeOf(store.secrets.replaceLabels('tls', { tier: 'x' }, read.revision))).to.equal('conflict');
    expect(await codeOf(store.secrets.replaceLabels('tls', { '': 'x' }, updated.revision))).to.equal('bad_request');
    expect(await codeOf(store.secrets.replaceLabels('nope', {}, 1))).to.equal('not_found');
    expect(store.backend.revision()).to.equal(before);
    // A rotation moves the revision too: a label update against the older one is stale.
    await store.secrets.rotate('tls', bytes('new'));
    expect(await codeOf(store.secrets.replaceLabels('tls', {}, updated.revision))).to.equal('conflict');
  });

  it('counts secrets and kept versions without opening a value', async () => {
    expect(await store.secrets.counts()).to.deep.equal({ secrets: 0, versions: 0 });
    await store.secrets.create('a', bytes('1'));
    await store.secrets.create('b', bytes('1'));
    await store.secrets.rotate('b', bytes('2'));
    expect(await store.secrets.counts()).to.deep.equal({ secrets: 2, versions: 3 });
  });

  it('never writes a value, or its base64, to disk', async () => {
    const values = Array.from({ length: 20 }, (_, i) => `plaintext-marker-${i}-${Math.random().toString(36).slice(2)}`);
    for (const [i, v] of values.entries()) await store.secrets.create(`m${i}`, bytes(v));
    await store.rotateKek();
    const everything = async () => Buffer.concat(await Promise.all((await readdir(dir)).map((f) => readFile(join(dir, f)))));
    const all = await everything();
    for (const v of values) {
      expect(all.includes(Buffer.from(v))).to.equal(false);
      expect(all.includes(Buffer.from(Buffer.from(v).toString('base64')))).to.equal(false);
    }
    // Positive controls: the scan reads the log (a secret's name is in it in clear), and finds a value planted in the directory.
    expect(all.includes(Buffer.from('secrets/m0'))).to.equal(true);
    await writeFile(join(dir, 'planted'), `${values[3]} ${Buffer.from(values[4]!).toString('base64')}`);
    const planted = await everything();
    expect(planted.includes(Buffer.from(values[3]!))).to.equal(true);
    expect(planted.includes(Buffer.from(Buffer.from(values[4]!).toString('base64')))).to.equal(true);
  });
});

describe('autolock', () => {
  let dir: string;
  beforeEach(async () => (dir = await tempDir()));
  afterEach(async () => removeDir(dir));

  it('shows an unlock key once, stays locked after a restart until it is given, and refuses a wrong one', async () => {
    const first = await openStore({ dataDir: dir, autolock: true });
    expect(first.newUnlockKey).to.match(/^HUSHKEY-1-/);
    await first.secrets.create('x', bytes('locked value'));
    await first.backend.close();
    expect(await readdir(dir)).not.to.include('master.key');

    const second = await openStore({ dataDir: dir });
    expect(second.newUnlockKey).to.equal(undefined);
    expect(second.keyring.locked).to.equal(true);
    expect(await codeOf(second.secrets.list().then(() => second.secrets.inspect('x')))).to.equal('locked');
    expect((await rejection(second.keyring.unlock('HUSHKEY-1-wrongwrongwrong'))).message).to.match(/wrong unlock key/);
    expect((await rejection(second.keyring.unlock('not a key'))).message).to.match(/not an unlock key/);
    expect(second.keyring.locked).to.equal(true);
    // Nothing from the log is served before the key has verified it.
    expect(await codeOf(second.backend.get('meta/keyring'))).to.equal('locked');
    await second.keyring.unlock(first.newUnlockKey!);
    expect(text((await second.secrets.reveal('x')).data)).to.equal('locked value');
    await second.backend.close();
  });
});

describe('keyed log (store)', () => {
  let dir: string;
  beforeEach(async () => (dir = await tempDir()));
  afterEach(async () => removeDir(dir));
  const fixture = (path: string) => new URL(`../fixtures/unkeyed-store/${path}`, import.meta.url).pathname;

  it('autolock: refuses, at unlock, a record appended without the key, naming file and offset; stays locked', async () => {
    const first = await openStore({ dataDir: dir, autolock: true });
    await first.secrets.create('x', bytes('v'));
    await first.backend.close();
    const wal = await lastSegment(dir);
    const offset = await appendUnkeyedCommit(wal, [{ type: 'delete', key: 'secrets/x' }]);

    const second = await openStore({ dataDir: dir });
    const err = await rejection(second.keyring.unlock(first.newUnlockKey!));
    expect(err.message).to.contain(`${wal}: record fails its authentication`);
    expect(err.message).to.contain(`at offset ${offset}; refusing to start`);
    expect(second.keyring.locked).to.equal(true);
    expect(await codeOf(second.backend.get('secrets/x'))).to.equal('locked');
    await second.backend.close();
  });

  it('refuses unkeyed files carrying the current keyring (a downgrade to the format of before)', async () => {
    const first = await openStore({ dataDir: dir });
    await first.secrets.create('x', bytes('v'));
    const keyring = (await first.backend.get('meta/keyring'))!.value;
    await first.backend.close();
    for (const f of (await readdir(dir)).filter((f) => f.startsWith('wal-'))) await unlink(join(dir, f));
    const commits = [[{ type: 'put' as const, key: 'meta/keyring', value: keyring }], [{ type: 'put' as const, key: 'services/evil', value: '{}' }]];
    await writeFile(join(dir, 'wal-00000000000000000001.log'), unkeyedSegment(1, commits).bytes);
    const err = await rejection(openStore({ dataDir: dir }));
    expect(err.message).to.contain('wal-00000000000000000001.log: file in the unkeyed format of before, but this store\'s keyring says its log is keyed');
  });

  for (const [field, value] of [['opslimit', 4294967295], ['memlimit', 2 ** 42]] as const) {
    it(`refuses a keyring asking Argon2id for ${field} ${value} before deriving anything`, async () => {
      const first = await openStore({ dataDir: dir, autolock: true });
      await first.backend.close();
      // Read as anyone can (the sealed keyring is plain JSON around its ciphertext), then appended unkeyed.
      const wal = await lastSegment(dir);
      const stored = JSON.parse((await readFile(wal)).toString('latin1').match(/\{"format":1,"root":"argon2id".*?\}/)![0]) as Record<string, unknown>;
      const offset = await appendUnkeyedCommit(wal, [{ type: 'put', key: 'meta/keyring', value: JSON.stringify({ ...stored, [field]: value }) }]);
      const err = await rejection(openStore({ dataDir: dir }));
      expect(err.message).to.contain(`${wal}: keyring record asks Argon2id for ${field} ${value} (accepted: `);
      expect(err.message).to.contain(`at offset ${offset}; refusing to start`);
    });
  }

  it('upgrades a key-file data directory written before the log was keyed, on its first start, and keys it from then on', async () => {
    await cp(fixture('keyfile/data'), dir, { recursive: true });
    expect((await readFile(await lastSegment(dir))).subarray(0, 8).toString()).to.equal('HUSHWAL1');
    const store = await openStore({ dataDir: dir });
    expect(text((await store.secrets.reveal('db_password')).data)).to.equal('s3cret');
    expect((await store.services.get('db')).constraints).to.deep.equal(['node.labels.zone==eu']);
    expect(await store.nodes.list()).to.deep.equal([]);
    expect(await store.backend.list('revoked/')).to.have.length(1);
    await store.backend.close();
    const files = await readdir(dir);
    for (const f of files.filter((f) => f.startsWith('wal-'))) expect((await readFile(join(dir, f))).subarray(0, 8).toString(), f).to.equal('HUSHWAL2');
    expect(JSON.parse(await readFile(join(dir, files.find((f) => f.startsWith('snapshot-'))!), 'utf8'))).to.have.property('mac');

    const again = await openStore({ dataDir: dir });
    expect((await again.services.get('db')).constraints).to.deep.equal(['node.labels.zone==eu']);
    await again.backend.close();
    await appendUnkeyedCommit(await lastSegment(dir), [{ type: 'delete', key: 'services/db' }]);
    expect((await rejection(openStore({ dataDir: dir }))).message).to.contain('record fails its authentication');
  });

  it('upgrades an autolocked data directory written before the log was keyed, at its first unlock', async () => {
    await cp(fixture('autolock/data'), dir, { recursive: true });
    const key = (await readFile(fixture('autolock/unlock-key'), 'utf8')).trim();
    const store = await openStore({ dataDir: dir });
    expect(store.keyring.locked).to.equal(true);
    expect((await readFile(await lastSegment(dir))).subarray(0, 8).toString(), 'nothing rewritten before the key').to.equal('HUSHWAL1');
    await store.keyring.unlock(key);
    expect(text((await store.secrets.reveal('db_password')).data)).to.equal('s3cret');
    expect(await store.backend.list('revoked/')).to.have.length(1);
    await store.backend.close();
    expect((await readFile(await lastSegment(dir))).subarray(0, 8).toString()).to.equal('HUSHWAL2');
    const again = await openStore({ dataDir: dir });
    await again.keyring.unlock(key);
    expect((await again.services.get('db')).constraints).to.deep.equal(['node.labels.zone==eu']);
    await again.backend.close();
  });
});
