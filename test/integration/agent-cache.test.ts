/**
 * The agent's RAM cache: sealed values that read back byte-identical at any
 * offset, never visible in the cache's own structures, replaced per version
 * while a version already handed out keeps reading what it was.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import type { WireDelta, WireSecretVersion, WireSnapshot } from '../../src/protocol/index.js';
import { CHUNK_BYTES, SecretCache, sourceForService } from '../../src/agent/index.js';

const wire = (name: string, version: number, data: Buffer, createdAt = 1_700_000_000_000): WireSecretVersion => ({
  name,
  version,
  data: Buffer.from(data),
  created_at_ms: createdAt,
});
const snapshot = (revision: number, secrets: WireSecretVersion[], services: WireSnapshot['services'] = []): WireSnapshot => ({ revision, secrets, services });
const delta = (revision: number, d: Partial<Omit<WireDelta, 'revision'>>): WireDelta => ({
  revision,
  upserts: d.upserts ?? [],
  removals: d.removals ?? [],
  services: d.services ?? [],
  removed_services: d.removed_services ?? [],
});

describe('agent cache (sealed RAM)', () => {
  let cache: SecretCache;
  beforeEach(() => {
    cache = new SecretCache();
  });
  afterEach(() => cache.destroy());

  it('reads values back byte-identical, whole and at any offset across chunk boundaries', () => {
    const small = Buffer.from('s3cret-value');
    const big = randomBytes(3 * CHUNK_BYTES + 123);
    cache.replace(snapshot(1, [wire('small', 1, small), wire('big', 4, big)]));

    expect(cache.read('small')!.equals(small)).to.equal(true);
    expect(cache.read('big')!.equals(big)).to.equal(true);
    const version = cache.get('big')!;
    expect(version.size).to.equal(big.length);
    for (const [position, length] of [
      [0, 1],
      [CHUNK_BYTES - 3, 7],
      [CHUNK_BYTES, CHUNK_BYTES],
      [CHUNK_BYTES - 1, 2 * CHUNK_BYTES + 2],
      [big.length - 5, 100],
      [123, 0],
    ]) {
      expect(version.read(position, length).equals(big.subarray(position, position + length)), `${position}+${length}`).to.equal(true);
    }
    expect(version.read(big.length, 10).length).to.equal(0);
    expect(version.read(big.length + 10, 10).length).to.equal(0);
    expect(() => version.read(-1, 1)).to.throw(RangeError);
    expect(cache.read('absent')).to.equal(undefined);
  });

  it('never shows a value in JSON, util.inspect, or the version objects, and zeroes the buffer it was given', () => {
    const value = Buffer.from('PLAINTEXT-MARKER-7f3a9c-do-not-leak');
    const delivered = wire('db_password', 2, value);
    cache.replace(snapshot(5, [delivered], [{ service: 'api', grants: [{ source: 'db_password', target: 'db', uid: 0, gid: 0, mode: 0o400 }] }]));

    expect(delivered.data.every((b) => b === 0), 'wire buffer zeroed after sealing').to.equal(true);
    const views = [
      JSON.stringify(cache),
      JSON.stringify(cache.get('db_password')),
      JSON.stringify(cache.held()),
      inspect(cache, { showHidden: true, depth: Infinity, getters: true }),
      inspect(cache.get('db_password'), { showHidden: true, depth: Infinity, getters: true }),
      JSON.stringify(sourceForService(cache, 'api').list()),
    ];
    for (const text of views) {
      expect(text).to.not.include('PLAINTEXT-MARKER');
      expect(text).to.not.include(value.toString('base64'));
      expect(text).to.not.include(value.toString('hex'));
    }
    expect(cache.held()).to.deep.equal({
      revision: 5,
      secrets: [{ name: 'db_password', version: 2 }],
      services: [{ service: 'api', grants: [{ source: 'db_password', target: 'db', uid: 0, gid: 0, mode: 0o400 }] }],
    });
  });

  it('replaces everything on a snapshot and applies deltas; an open version keeps its content', () => {
    cache.replace(snapshot(1, [wire('a', 1, Buffer.from('a-one')), wire('b', 1, Buffer.from('b-one'))]));
    const pinned = cache.get('a')!;

    cache.apply(delta(2, { upserts: [wire('a', 2, Buffer.from('a-two, longer'))], removals: ['b'] }));
    expect(cache.revision).to.equal(2);
    expect(cache.read('a')!.toString()).to.equal('a-two, longer');
    expect(cache.get('b')).to.equal(undefined);
    expect(pinned.readAll().toString(), 'a reader that opened v1 still reads v1').to.equal('a-one');

    cache.replace(snapshot(7, [wire('c', 1, Buffer.from('c-one'))]));
    expect(cache.held().secrets).to.deep.equal([{ name: 'c', version: 1 }]);
    expect(cache.revision).to.equal(7);
  });

  it('keeps the same object for an unchanged version across snapshots (a reconnect changes nothing for readers)', () => {
    cache.replace(snapshot(1, [wire('a', 3, Buffer.from('x'))]));
    const before = cache.get('a');
    cache.replace(snapshot(2, [wire('a', 3, Buffer.from('x'))]));
    expect(cache.get('a')).to.equal(before);
  });

  it('gives every new version a later mtime, even with the same creation time (the kernel page cache relies on it)', () => {
    cache.replace(snapshot(1, [wire('a', 1, Buffer.from('one'), 1000)]));
    const first = cache.get('a')!.mtime.getTime();
    cache.apply(delta(2, { upserts: [wire('a', 2, Buffer.from('two'), 1000)] }));
    const second = cache.get('a')!.mtime.getTime();
    cache.apply(delta(3, { removals: ['a'] }));
    cache.apply(delta(4, { upserts: [wire('a', 3, Buffer.from('six'), 900)] }));
    const third = cache.get('a')!.mtime.getTime();
    expect(second).to.be.greaterThan(first);
    expect(third).to.be.greaterThan(second);
  });

  it('builds a per-service view from grants: targets, owners, modes, and only that service', () => {
    cache.replace(
      snapshot(
        1,
        [wire('db_password', 1, Buffer.from('pw')), wire('api_key', 1, Buffer.from('key-123'))],
        [
          { service: 'api', grants: [{ source: 'db_password', target: 'db', uid: 1000, gid: 1001, mode: 0o440 }, { source: 'not_delivered', target: 'ghost', uid: 0, gid: 0, mode: 0o444 }] },
          { service: 'web', grants: [{ source: 'api_key', target: 'api_key', uid: 0, gid: 0, mode: 0o444 }] },
        ],
      ),
    );
    const api = sourceForService(cache, 'api');
    expect(api.list().map((f) => f.name)).to.deep.equal(['db']);
    const file = api.lookup('db')!;
    expect({ uid: file.uid, gid: file.gid, mode: file.mode, size: file.size }).to.deep.equal({ uid: 1000, gid: 1001, mode: 0o440, size: 2 });
    expect(file.open().read(0, 100).toString()).to.equal('pw');
    expect(api.lookup('ghost'), 'a grant whose secret is not held shows no file').to.equal(undefined);
    expect(api.lookup('api_key'), "another service's file").to.equal(undefined);
    expect(sourceForService(cache, 'unknown').list()).to.deep.equal([]);

    // The view follows the cache: a new version is what the next open sees; an open handle keeps its version.
    const handle = file.open();
    cache.apply(delta(2, { upserts: [wire('db_password', 2, Buffer.from('pw-rotated'))] }));
    expect(api.lookup('db')!.open().read(0, 100).toString()).to.equal('pw-rotated');
    expect(handle.read(0, 100).toString()).to.equal('pw');
    cache.apply(delta(3, { removed_services: ['api'] }));
    expect(api.list()).to.deep.equal([]);
  });

  it('drops everything on clear, and makes held versions unreadable once destroyed', () => {
    cache.replace(snapshot(1, [wire('a', 1, Buffer.from('x'))]));
    const held = cache.get('a')!;
    cache.clear();
    expect(cache.held()).to.deep.equal({ revision: 0, secrets: [], services: [] });
    cache.destroy();
    expect(() => held.readAll()).to.throw(/destroyed/);
  });

  it('tells listeners after each change, and a failing listener does not stop the update', () => {
    let calls = 0;
    const unsubscribe = cache.onChange(() => {
      throw new Error('listener bug (expected in this test)');
    });
    cache.onChange(() => calls++);
    cache.replace(snapshot(1, [wire('a', 1, Buffer.from('x'))]));
    cache.apply(delta(2, { removals: ['a'] }));
    unsubscribe();
    expect(calls).to.equal(2);
    expect(cache.revision).to.equal(2);
  });
});
