/**
 * What the etcd backend adds to the conformance suite: its values are
 * authenticated with the store's key. On a real single-member etcd.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { deriveLogAuth, EtcdBackend, loadSodium, type LogAuth } from '../../src/store/index.js';
import { rejection } from '../helpers/assert.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js';
import { until } from '../helpers/until.js';

describe('etcd backend: authenticated values', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let raw: Etcd3;
  let auth: LogAuth;
  let prefix: string;
  const opened: EtcdBackend[] = [];
  const open = async (withAuth = auth) => {
    const backend = await EtcdBackend.open({ endpoints: etcd.endpoints, prefix, auth: withAuth });
    opened.push(backend);
    return backend;
  };

  before(async () => {
    etcd = await startEtcdCluster(1);
    raw = new Etcd3({ hosts: etcd.endpoints });
    auth = deriveLogAuth(await loadSodium(), Buffer.alloc(32, 7));
  });
  after(async () => {
    raw?.close();
    await etcd?.stop();
  });
  beforeEach(() => {
    prefix = `unit-${randomBytes(4).toString('hex')}/`;
  });
  afterEach(async () => {
    for (const backend of opened.splice(0)) await backend.close();
  });

  it('stores each value framed with a tag, never as written', async () => {
    const db = await open();
    await db.commit({ ops: [{ type: 'put', key: 'services/web', value: '{"grants":[]}' }] });
    const stored = (await raw.get(`${prefix}services/web`).buffer())!;
    expect(stored[0]).to.equal(1);
    expect(stored.subarray(1, 33)).to.deep.equal(auth.value('services/web', Buffer.from('{"grants":[]}')));
    expect(stored.subarray(33).toString()).to.equal('{"grants":[]}');
  });

  it('refuses, naming the key, a value written without the key, an edited one, and one moved from another key', async () => {
    const db = await open();
    await db.commit({ ops: [{ type: 'put', key: 'services/web', value: 'genuine' }] });
    const genuine = (await raw.get(`${prefix}services/web`).buffer())!;
    const cases: [string, Buffer][] = [
      ['services/forged', Buffer.concat([Buffer.from([1]), Buffer.alloc(32), Buffer.from('forged')])],
      ['services/plain', Buffer.from('no frame at all')],
      ['services/edited', Buffer.concat([genuine.subarray(0, 33), Buffer.from('genuinE')])],
      ['services/moved', genuine],
    ];
    for (const [key, value] of cases) {
      await raw.put(prefix + key).value(value);
      const err = await rejection(db.get(key));
      expect(err.message, key).to.equal(`etcd key ${prefix}${key} fails its authentication (written by someone without this store's key, moved from another key, or damaged): refusing to serve it`);
      await raw.delete().key(prefix + key);
    }
    expect((await db.get('services/web'))?.value).to.equal('genuine');
    // Another store's key (another root key) does not verify this one's values: opening refuses, naming the key.
    const other = deriveLogAuth(await loadSodium(), Buffer.alloc(32, 8));
    const err = await rejection(open(other));
    expect(err.message).to.contain(`etcd key ${prefix}services/web fails its authentication`);
  });

  it('drops a forged put from the watch (as a delete: listeners re-read and are refused) and goes on', async () => {
    const db = await open();
    const events: { revision: number; ops: { type: string; key: string }[] }[] = [];
    db.watch((event) => events.push(event));
    await raw.put(`${prefix}services/evil`).value(Buffer.from('forged'));
    const after = await db.commit({ ops: [{ type: 'put', key: 'services/good', value: 'ok' }] });
    await until(() => events.some((e) => e.revision === after), 'the genuine commit after the forged one');
    expect(events.map((e) => e.ops.map((o) => `${o.type} ${o.key}`))).to.deep.equal([['delete services/evil'], ['put services/good']]);
  });

  it('reads the keyring unverified before it is authenticated, and serves nothing else until then', async () => {
    const db = await open();
    await db.commit({ ops: [{ type: 'put', key: 'meta/keyring', value: '{"format":1}' }] });
    const locked = EtcdBackend.at({ endpoints: etcd.endpoints, prefix });
    opened.push(locked);
    expect(await locked.peek('meta/keyring')).to.deep.include({ value: '{"format":1}', hasData: true, file: `etcd key ${prefix}meta/keyring` });
    expect(await rejection(locked.get('meta/keyring'))).to.have.property('code', 'locked');
    expect(await rejection(locked.commit({ ops: [{ type: 'put', key: 'x', value: 'y' }] }))).to.have.property('code', 'locked');
    const empty = EtcdBackend.at({ endpoints: etcd.endpoints, prefix: `${prefix}empty/` });
    opened.push(empty);
    expect((await empty.peek('meta/keyring')).hasData).to.equal(false);
  });

  describe('reads from the copy the watch keeps current', () => {
    it('sees another replica\'s commits once its watch delivers them, deletes included, and its own commits at once', async () => {
      const a = await open();
      const b = await open();
      const bCopy = b.watchedReads();
      const told: number[] = [];
      b.watch((event) => told.push(event.revision));
      const put = await a.commit({ ops: [{ type: 'put', key: 'services/web', value: 'v1' }, { type: 'put', key: 'services/db', value: 'v1' }] });
      await until(() => told.includes(put), 'replica b told of a\'s commit');
      // Listeners are told after the copy has the event: what a listener reads is at least what it was told of.
      expect(await bCopy.get('services/web')).to.deep.equal({ key: 'services/web', value: 'v1', modRevision: put });
      const removed = await a.commit({ ops: [{ type: 'delete', key: 'services/db' }] });
      await until(() => told.includes(removed), 'replica b told of the delete');
      expect((await bCopy.list('services/')).map((e) => e.key)).to.deep.equal(['services/web']);
      // Read-your-writes without waiting on anything: the read waits for the copy to hold b's own commit.
      for (let i = 0; i < 20; i++) {
        const mine = await b.commit({ ops: [{ type: 'put', key: 'services/web', value: `b${i}` }] });
        expect(await bCopy.get('services/web'), `read after b's commit ${i}`).to.deep.equal({ key: 'services/web', value: `b${i}`, modRevision: mine });
        expect(bCopy.revision()).to.be.at.least(mine);
      }
    });

    it('answers from memory: with etcd down, a read of the copy still answers and a linearizable read fails as unavailable', async () => {
      const db = await open();
      const copy = db.watchedReads();
      const written = await db.commit({ ops: [{ type: 'put', key: 'nodes/n1', value: 'record' }] });
      expect((await copy.get('nodes/n1'))?.modRevision).to.equal(written);
      await etcd.kill(0);
      try {
        expect((await copy.get('nodes/n1'))?.value).to.equal('record');
        expect((await copy.list('nodes/')).map((e) => e.key)).to.deep.equal(['nodes/n1']);
        expect(await rejection(db.get('nodes/n1'))).to.have.property('code', 'unavailable');
      } finally {
        await etcd.start(0);
      }
    });

    it('keeps a forged value out of the copy (dropped as a delete, as listeners are told)', async () => {
      const db = await open();
      const copy = db.watchedReads();
      await db.commit({ ops: [{ type: 'put', key: 'services/evil', value: 'genuine' }] });
      await raw.put(`${prefix}services/evil`).value(Buffer.concat([Buffer.from([1]), Buffer.alloc(32), Buffer.from('forged')]));
      const after = await db.commit({ ops: [{ type: 'put', key: 'services/good', value: 'ok' }] });
      expect((await copy.get('services/good'))?.modRevision).to.equal(after);
      expect(await copy.get('services/evil')).to.equal(undefined);
    });
  });
});
