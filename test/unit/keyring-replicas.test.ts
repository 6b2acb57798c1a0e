/**
 * Two stores on one etcd prefix (two replicas, one key file), on a real
 * single-member etcd: a KEK rotation through one is taken by the other,
 * whether its watch has told it yet or its next write or read meets the
 * newer keyring first. Nothing is ever sealed under a KEK the stored keyring
 * no longer holds: every value written through either reads back through both.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { openStore, type OpenedStore } from '../../src/store/index.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const text = (s: string) => new TextEncoder().encode(s);
const value = async (store: OpenedStore, name: string) => Buffer.from((await store.secrets.reveal(name)).data).toString('utf8');

describe('keyring on replicas: a KEK rotation through one replica reaches the other', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let dir: string;
  let a: OpenedStore;
  let b: OpenedStore;

  before(async () => {
    etcd = await startEtcdCluster(1);
  });
  after(async () => etcd?.stop());
  beforeEach(async () => {
    dir = await tempDir('hush-keyring-replicas-');
    const prefix = `keyring-${randomBytes(4).toString('hex')}/`;
    a = await openStore({ dataDir: join(dir, 'a'), etcd: { endpoints: etcd.endpoints, prefix } });
    await mkdir(join(dir, 'b'), { recursive: true, mode: 0o700 });
    await copyFile(join(dir, 'a', 'master.key'), join(dir, 'b', 'master.key'));
    b = await openStore({ dataDir: join(dir, 'b'), etcd: { endpoints: etcd.endpoints, prefix } });
  });
  afterEach(async () => {
    await a?.backend.close();
    await b?.backend.close();
    await removeDir(dir);
  });

  it('B writes and reads at once after A rotated (whichever comes first, its watch or a commit refused for the older keyring, brings it the new one), and A reads what B sealed', async () => {
    await a.secrets.create('before', text('sealed under term 1'));
    // No waiting for B's watch.
    const term = (await a.rotateKek()).term;
    expect(term).to.equal(2);
    await b.secrets.create('after', text('sealed through B'));
    await b.secrets.rotate('before', text('rotated through B'));
    expect(b.keyring.term).to.equal(2);
    for (const store of [a, b]) {
      expect(await value(store, 'after')).to.equal('sealed through B');
      expect(await value(store, 'before')).to.equal('rotated through B');
    }
  });

  it('the watch alone brings B the new keyring, and B then rotates from it (term 3 on both)', async () => {
    await a.secrets.create('s', text('v1'));
    await a.rotateKek();
    await until(() => b.keyring.term === 2, 'B reloading from the watch');
    expect((await b.rotateKek()).term).to.equal(3);
    await until(() => a.keyring.term === 3, 'A reloading from the watch');
    expect(await value(a, 's')).to.equal('v1');
    expect(await value(b, 's')).to.equal('v1');
  });

  it('a rotation through B right after one through A (B still on the old keyring) rotates again from the newer one', async () => {
    await a.secrets.create('s', text('v1'));
    await a.rotateKek();
    // No wait: B prepares from term 1, its commit is refused, it reloads inside its rotation and rotates from term 2.
    expect((await b.rotateKek()).term).to.equal(3);
    await until(() => a.keyring.term === 3, 'A reloading from the watch');
    expect(await value(a, 's')).to.equal('v1');
  });

  it('writes through B during rotations through A all land, each readable through both', async () => {
    const written: string[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing || i < 5; i++) {
        const name = `w${i}`;
        await b.secrets.create(name, text(`value ${i}`));
        written.push(name);
      }
    })();
    for (let i = 0; i < 3; i++) await a.rotateKek();
    writing = false;
    await writer;
    expect(written.length).to.be.at.least(5);
    await until(() => b.keyring.term === a.keyring.term, 'B on the same term as A');
    for (const name of written) {
      const expected = `value ${name.slice(1)}`;
      expect(await value(a, name), `${name} through A`).to.equal(expected);
      expect(await value(b, name), `${name} through B`).to.equal(expected);
    }
  });
});
