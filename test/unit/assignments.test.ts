import { expect } from 'chai';
import { Assignments } from '../../src/server/assignments.js';
import type { NodeRecord, ServiceRecord, StoreChange } from '../../src/store/index.js';

const grant = (source: string) => ({ source, target: source, uid: 0, gid: 0, mode: 0o444 });
const service = (name: string, secrets: string[]): ServiceRecord => ({ name, grants: secrets.map(grant), constraints: [], createdAt: '', updatedAt: '' });
const node = (id: string, services: string[], name = id): NodeRecord => ({
  id,
  name,
  hostname: name,
  engineLabels: {},
  role: 'node',
  containers: services.map((s, i) => ({ id: `${id}-c${i}`, service: s })),
  createdAt: '',
  updatedAt: '',
});

/**
 * 100 nodes; service "db" (granted db_pw) runs on nodes 0, 1 and 2, service
 * "web" (granted api_key) on every other node.
 */
function cluster(): Assignments {
  const index = new Assignments();
  const nodes = Array.from({ length: 100 }, (_, i) => node(`n${i}`, i < 3 ? ['db'] : ['web']));
  index.load([service('db', ['db_pw']), service('web', ['api_key'])], nodes);
  return index;
}

describe('dispatcher assignments: which sessions a change touches', () => {
  it('a rotation of a secret used by one service running on 3 of 100 nodes touches those 3', () => {
    const touched = cluster().apply([{ kind: 'secret', name: 'db_pw', removed: false }]);
    expect([...touched].sort()).to.deep.equal(['n0', 'n1', 'n2']);
  });

  it('a secret no service uses touches none; one used everywhere else touches the 97 others', () => {
    const index = cluster();
    expect(index.apply([{ kind: 'secret', name: 'unused', removed: false }]).size).to.equal(0);
    expect(index.apply([{ kind: 'secret', name: 'api_key', removed: false }]).size).to.equal(97);
  });

  it('a service change touches the nodes running it, and re-indexes its grants', () => {
    const index = cluster();
    const touched = index.apply([{ kind: 'service', name: 'db', record: service('db', ['db_pw', 'api_key']) }]);
    expect(touched.size).to.equal(3);
    expect(index.apply([{ kind: 'secret', name: 'api_key', removed: false }]).size).to.equal(100);
    index.apply([{ kind: 'service', name: 'db', record: undefined }]);
    expect([...index.servicesUsing('api_key')]).to.deep.equal(['web']);
    expect(index.apply([{ kind: 'secret', name: 'db_pw', removed: false }]).size).to.equal(0);
  });

  it('a node record change touches that node alone and moves it between services', () => {
    const index = cluster();
    expect([...index.apply([{ kind: 'node', id: 'n50', record: node('n50', ['db']) }])]).to.deep.equal(['n50']);
    expect([...index.nodesRunning('db')].sort()).to.deep.equal(['n0', 'n1', 'n2', 'n50']);
    index.apply([{ kind: 'node', id: 'n0', record: undefined }]);
    expect([...index.apply([{ kind: 'secret', name: 'db_pw', removed: false }])].sort()).to.deep.equal(['n1', 'n2', 'n50']);
  });

  it('admin labels of a name touch the nodes holding that name', () => {
    const index = new Assignments();
    index.load([], [node('a1', [], 'alpha'), node('a2', [], 'alpha'), node('b1', [], 'beta')]);
    expect([...index.apply([{ kind: 'node-labels', name: 'alpha' }])].sort()).to.deep.equal(['a1', 'a2']);
  });

  it('changes applied before the load finishes win over the (older) loaded records', () => {
    const index = new Assignments();
    const change: StoreChange = { kind: 'service', name: 'db', record: service('db', ['new_pw']) };
    index.apply([change]);
    index.load([service('db', ['old_pw'])], [node('n0', ['db'])]);
    expect([...index.servicesUsing('new_pw')]).to.deep.equal(['db']);
    expect(index.servicesUsing('old_pw').size).to.equal(0);
  });
});
