/**
 * Node records and admin labels in a real store on disk: admin labels kept
 * per node name apart from what nodes report, and records of older versions
 * (labels from Join stored as `labels`) moved to engine labels when the
 * store opens.
 */
import { expect } from 'chai';
import { keys, openStore, type OpenedStore } from '../../src/store/index.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

describe('node store: admin labels and engine labels', () => {
  let dir: string;
  let store: OpenedStore | undefined;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await store?.backend.close();
    store = undefined;
    await removeDir(dir);
  });

  it('keeps admin labels on the name: a node that rejoins under it (a new id) has them, its self-reported labels stay apart', async () => {
    store = await openStore({ dataDir: dir });
    const first = await store.nodes.register({ name: 'web1', hostname: 'h1', engineLabels: { zone: 'us' } });
    expect(await store.nodes.changeAdminLabels('web1', { add: { zone: 'eu', disk: 'ssd' } })).to.deep.equal({ zone: 'eu', disk: 'ssd' });
    await store.nodes.revoke(first.id);
    const again = await store.nodes.register({ name: 'web1', hostname: 'h1', engineLabels: {} });
    expect(again.id).not.to.equal(first.id);
    expect(await store.nodes.adminLabels('web1')).to.deep.equal({ zone: 'eu', disk: 'ssd' });
    expect(again).not.to.have.property('labels');
    expect(first.engineLabels).to.deep.equal({ zone: 'us' });
    expect(await store.nodes.adminLabels('web2')).to.deep.equal({});
  });

  it('removes what replicas shared about a node (its session and acks records) with the node', async () => {
    store = await openStore({ dataDir: dir });
    const node = await store.nodes.register({ name: 'web1', hostname: 'h1', engineLabels: {} });
    const other = await store.nodes.register({ name: 'web2', hostname: 'h2', engineLabels: {} });
    const shared = [node, other].flatMap((n) => [keys.nodeAcksKey(n.id), keys.nodeSessionKey(n.id)]);
    await store.backend.commit({ ops: shared.map((key) => ({ type: 'put' as const, key, value: '{}' })) });
    await store.nodes.revoke(node.id);
    const left = await Promise.all(shared.map(async (key) => (await store!.backend.get(key)) !== undefined));
    expect(left).to.deep.equal([false, false, true, true]);
  });

  it('removes labels, and forgets a name left with none', async () => {
    store = await openStore({ dataDir: dir });
    await store.nodes.changeAdminLabels('web1', { add: { zone: 'eu', disk: 'ssd' } });
    expect(await store.nodes.changeAdminLabels('web1', { remove: ['disk', 'absent'] })).to.deep.equal({ zone: 'eu' });
    expect(await store.nodes.changeAdminLabels('web1', { remove: ['zone'] })).to.deep.equal({});
    expect([...(await store.nodes.allAdminLabels()).keys()]).to.deep.equal([]);
    expect(await store.backend.list('node-labels/')).to.deep.equal([]);
  });

  it('moves labels a node reported at join under an older version to engine labels on start, never to admin labels', async () => {
    // An old-shape record, written through the backend as the previous version did.
    store = await openStore({ dataDir: dir });
    const backend = store.backend;
    const old = {
      id: 'oldnode00000000000000000a',
      name: 'eu1',
      hostname: 'eu1',
      labels: { zone: 'eu' },
      role: 'node',
      containers: [{ id: 'web-1', service: 'api' }],
      createdAt: '2024-01-01T00:00:00.000Z',
      updatedAt: '2024-01-01T00:00:00.000Z',
    };
    await backend.commit({ ops: [{ type: 'put', key: keys.nodeKey(old.id), value: JSON.stringify(old) }] });
    await backend.close();

    store = await openStore({ dataDir: dir });
    const migrated = await store.nodes.get(old.id);
    const { labels, ...unchanged } = old;
    expect(migrated).to.deep.equal({ ...unchanged, engineLabels: labels });
    expect(await store.nodes.adminLabels('eu1')).to.deep.equal({});
    await store.backend.close();

    // Idempotent: a second start finds nothing to move and changes nothing.
    store = await openStore({ dataDir: dir });
    const revision = store.backend.revision();
    expect(await store.nodes.migrateJoinLabels()).to.equal(0);
    expect(store.backend.revision()).to.equal(revision);
    expect(await store.nodes.get(old.id)).to.deep.equal(migrated);
  });
});
