import { expect } from 'chai';
import { openStore, type ChangeBatch, type OpenedStore } from '../../src/store/index.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

describe('change feed: typed changes, decoded once per commit', () => {
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

  it('reports secrets, services (with their record), node records, node labels and revocations; internal keys not at all', async () => {
    const batches: ChangeBatch[] = [];
    const unsubscribe = store.changes.subscribe((batch) => batches.push(batch));
    await store.secrets.create('db_pw', new TextEncoder().encode('x'));
    await store.services.put({ name: 'db', grants: [{ source: 'db_pw', target: 'pw', uid: 0, gid: 0, mode: 0o400 }], constraints: [] });
    const node = await store.nodes.register({ name: 'n1', hostname: 'h1', engineLabels: {} });
    await store.nodes.changeAdminLabels('n1', { add: { zone: 'eu' } });
    await store.nodes.revoke(node.id);
    await store.secrets.putSealed('join-secret', new TextEncoder().encode('s'));
    unsubscribe();
    await store.secrets.rotate('db_pw', new TextEncoder().encode('y'));

    const kinds = batches.map((b) => b.changes.map((c) => c.kind));
    // A removal also deletes what replicas shared about the node (absent here: the embedded engine reports the deletes anyway).
    expect(kinds).to.deep.equal([['secret'], ['service'], ['node'], ['node-labels'], ['node', 'node-acks', 'node-session', 'revoked']]);
    expect(batches[0]!.changes[0]).to.deep.equal({ kind: 'secret', name: 'db_pw', removed: false });
    const service = batches[1]!.changes[0]!;
    expect(service.kind === 'service' && service.record?.grants.map((g) => g.source)).to.deep.equal(['db_pw']);
    expect(batches[4]!.changes).to.deep.equal([
      { kind: 'node', id: node.id, record: undefined },
      { kind: 'node-acks', nodeId: node.id, record: undefined },
      { kind: 'node-session', nodeId: node.id, record: undefined },
      { kind: 'revoked', id: node.id },
    ]);
    expect(batches.map((b) => b.revision)).to.satisfy((revs: number[]) => revs.every((r, i) => i === 0 || r > revs[i - 1]!));
  });
});
