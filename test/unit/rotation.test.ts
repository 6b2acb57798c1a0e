import { expect } from 'chai';
import { DEFAULT_KEEP_VERSIONS, generateValue, MAX_GENERATE_BYTES, PropagationTracker, retainVersions } from '../../src/rotation/index.js';
import { hushErrorCode } from '../helpers/assert.js';

/** A random source that counts calls and returns a recognisable pattern. */
function patternSource() {
  const calls: number[] = [];
  const source = (n: number) => {
    calls.push(n);
    return Uint8Array.from({ length: n }, (_, i) => i % 251);
  };
  return { calls, source };
}

describe('rotation: value generation', () => {
  it('takes exactly the requested bytes from the injected source', () => {
    const { calls, source } = patternSource();
    const value = generateValue(32, source);
    expect(calls).to.deep.equal([32]);
    expect([...value]).to.deep.equal(Array.from({ length: 32 }, (_, i) => i));
    expect(generateValue(MAX_GENERATE_BYTES, source)).to.have.length(MAX_GENERATE_BYTES);
  });

  it('refuses counts out of bounds or not whole, without asking the source', () => {
    const { calls, source } = patternSource();
    for (const bad of [0, -1, MAX_GENERATE_BYTES + 1, 1.5, Number.NaN]) expect(hushErrorCode(() => generateValue(bad, source)), String(bad)).to.equal('bad_request');
    expect(calls).to.deep.equal([]);
  });

  it('refuses a source that returns fewer bytes than asked (a weaker secret would follow)', () => {
    expect(hushErrorCode(() => generateValue(16, () => new Uint8Array(8)))).to.equal('internal');
  });
});

describe('rotation: retention', () => {
  const versions = (n: number) => Array.from({ length: n }, (_, i) => ({ version: i + 1 }));

  it('keeps the newest versions, oldest first', () => {
    expect(retainVersions(versions(5), 3).map((v) => v.version)).to.deep.equal([3, 4, 5]);
    expect(retainVersions(versions(2), 3).map((v) => v.version)).to.deep.equal([1, 2]);
    expect(retainVersions(versions(DEFAULT_KEEP_VERSIONS + 4)).map((v) => v.version)[0]).to.equal(5);
  });

  it('never keeps fewer than one version', () => {
    expect(hushErrorCode(() => retainVersions(versions(3), 0))).to.equal('bad_request');
    expect(retainVersions(versions(3), 1).map((v) => v.version)).to.deep.equal([3]);
  });
});

describe('rotation: propagation tracker', () => {
  const at = new Date('2030-01-01T00:00:00Z');
  const held = (entries: [string, number][]) => new Map(entries);

  it('says which entitled nodes hold a version, complete once all hold it or a newer one', () => {
    const tracker = new PropagationTracker();
    tracker.acked('n1', 10, held([['db', 2]]), at);
    tracker.acked('n2', 11, held([['db', 1]]), at);
    let p = tracker.propagation('db', 2, ['n1', 'n2', 'n3']);
    expect(p.complete).to.equal(false);
    expect(p.nodes).to.deep.equal([
      { node: 'n1', version: 2, ackedAt: at.toISOString() },
      { node: 'n2', version: 1, ackedAt: at.toISOString() },
      { node: 'n3', version: undefined, ackedAt: undefined },
    ]);
    tracker.acked('n2', 12, held([['db', 3]]), at);
    tracker.acked('n3', 5, held([['db', 2]]), at);
    p = tracker.propagation('db', 2, ['n1', 'n2', 'n3']);
    expect(p.complete).to.equal(true);
    expect(tracker.holders('db').map((h) => [h.node, h.version])).to.deep.equal([
      ['n1', 2],
      ['n2', 3],
      ['n3', 2],
    ]);
  });

  it('ignores an ack older than the one it has, and forgets a node whose session ended', () => {
    const tracker = new PropagationTracker();
    tracker.acked('n1', 10, held([['db', 2]]), at);
    tracker.acked('n1', 9, held([['db', 1]]), at);
    expect(tracker.versionOn('n1', 'db')).to.equal(2);
    expect(tracker.ackedRevision('n1')).to.equal(10);
    tracker.forget('n1');
    expect(tracker.versionOn('n1', 'db')).to.equal(undefined);
    expect(tracker.propagation('db', 1, ['n1']).complete).to.equal(false);
  });

  it('keeps its own copy of what a node holds', () => {
    const tracker = new PropagationTracker();
    const versions = held([['db', 1]]);
    tracker.acked('n1', 1, versions, at);
    versions.set('db', 7);
    expect(tracker.versionOn('n1', 'db')).to.equal(1);
  });

  it('looks up elsewhere (another replica\'s shared acks) only the nodes it has no acks of', () => {
    const tracker = new PropagationTracker();
    tracker.acked('n1', 10, held([['db', 2]]), at);
    const shared = new Map([
      ['n1', { revision: 3, held: new Map([['db', { version: 1, at }]]) }],
      ['n2', { revision: 12, held: new Map([['db', { version: 2, at }]]) }],
    ]);
    const p = tracker.propagation('db', 2, ['n1', 'n2', 'n3'], undefined, (node) => shared.get(node));
    expect(p.nodes.map((n) => [n.node, n.version])).to.deep.equal([
      ['n1', 2],
      ['n2', 2],
      ['n3', undefined],
    ]);
    expect(p.complete).to.equal(false);
    expect(tracker.propagation('db', 2, ['n1', 'n2'], undefined, (node) => shared.get(node)).complete).to.equal(true);
    expect(tracker.state('n1')?.revision).to.equal(10);
  });
});
