import { expect } from 'chai';
import { constraintMatches, explainMismatch, parseConstraint, type Constraint, type NodeView } from '../../src/acl/index.js';
import { HushError } from '../../src/errors/index.js';

const n1: NodeView = { id: 'id1', hostname: 'n1', labels: { zone: 'eu', disk: 'ssd' } };
const n2: NodeView = { id: 'id2', hostname: 'n2', labels: { zone: 'us' } };
const bare: NodeView = { id: 'id3', hostname: 'n3', labels: {}, role: 'store' };
// What an agent joined with `--label zone=eu` looks like: the claim is its own, no admin made it.
const claims: NodeView = { id: 'id4', hostname: 'n4', labels: {}, engineLabels: { zone: 'eu' } };
// An admin labelled it zone=us; it reports zone=eu.
const mixed: NodeView = { id: 'id5', hostname: 'n5', labels: { zone: 'us' }, engineLabels: { zone: 'eu' } };

describe('acl constraints: parseConstraint', () => {
  const ok: [string, Constraint][] = [
    ['node.labels.zone==eu', { field: 'label', key: 'zone', op: '==', value: 'eu', text: 'node.labels.zone==eu' }],
    ['node.labels.zone!=eu', { field: 'label', key: 'zone', op: '!=', value: 'eu', text: 'node.labels.zone!=eu' }],
    ['node.labels.com.example.tier==db', { field: 'label', key: 'com.example.tier', op: '==', value: 'db', text: 'node.labels.com.example.tier==db' }],
    [' node.labels.zone == eu ', { field: 'label', key: 'zone', op: '==', value: 'eu', text: 'node.labels.zone==eu' }],
    ['node.hostname==web-1', { field: 'hostname', op: '==', value: 'web-1', text: 'node.hostname==web-1' }],
    ['node.hostname!=web-1', { field: 'hostname', op: '!=', value: 'web-1', text: 'node.hostname!=web-1' }],
    ['node.id==abc123', { field: 'id', op: '==', value: 'abc123', text: 'node.id==abc123' }],
    ['node.id!=abc123', { field: 'id', op: '!=', value: 'abc123', text: 'node.id!=abc123' }],
    ['node.role==node', { field: 'role', op: '==', value: 'node', text: 'node.role==node' }],
    ['node.role!=node', { field: 'role', op: '!=', value: 'node', text: 'node.role!=node' }],
    ['Node.Hostname==web-1', { field: 'hostname', op: '==', value: 'web-1', text: 'node.hostname==web-1' }],
    ['engine.labels.zone==eu', { field: 'engine_label', key: 'zone', op: '==', value: 'eu', text: 'engine.labels.zone==eu' }],
    ['Engine.Labels.Zone!=eu', { field: 'engine_label', key: 'Zone', op: '!=', value: 'eu', text: 'engine.labels.Zone!=eu' }],
  ];
  for (const [expr, want] of ok) {
    it(`parses "${expr}"`, () => expect(parseConstraint(expr)).to.deep.equal(want));
  }

  const bad: [string, RegExp][] = [
    ['node.labels.zone=eu', /no == or != operator/],
    ['foo==bar', /unknown field "foo"/],
    ['node.labels.==x', /empty label key/],
    ['node.labels.zone==', /no value/],
    ['node.labels.zone===eu', /contains "="/],
    ['node.labels.zone==eu!=us', /contains "="/],
    ['node.hostname=!h', /no == or != operator/],
    ['node.platform.os==linux', /unknown field "node.platform.os"/],
    ['engine.labels.==x', /empty label key after engine\.labels\./],
    ['engine.labels.my zone==eu', /label key "my zone"/],
    ['engine.zone==eu', /unknown field "engine.zone"/],
    ['node.labels.my zone==eu', /label key "my zone"/],
    ['==eu', /unknown field ""/],
    ['', /no == or != operator/],
    ['node.labels.zone==e\nu', /control character/],
  ];
  for (const [expr, message] of bad) {
    it(`rejects ${JSON.stringify(expr)}`, () => {
      let err: unknown;
      try {
        parseConstraint(expr);
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(HushError);
      expect((err as HushError).code).to.equal('bad_request');
      expect((err as HushError).message).to.match(message);
      // The user is told what would have worked.
      expect((err as HushError).message).to.include('accepted forms: node.labels.KEY==VALUE');
    });
  }
});

describe('acl constraints: constraintMatches', () => {
  const cases: [string, NodeView, boolean][] = [
    ['node.labels.zone==eu', n1, true],
    ['node.labels.zone==eu', n2, false],
    ['node.labels.zone==eu', bare, false],
    ['node.labels.zone!=eu', n1, false],
    ['node.labels.zone!=eu', n2, true],
    // Swarm: != on a missing label is met.
    ['node.labels.zone!=eu', bare, true],
    // Swarm compares values case-insensitively...
    ['node.labels.zone==EU', n1, true],
    // ...but label keys exactly.
    ['node.labels.Zone==eu', n1, false],
    ['node.hostname==n1', n1, true],
    ['node.hostname==N1', n1, true],
    ['node.hostname==n1', n2, false],
    ['node.hostname!=n1', n1, false],
    ['node.hostname!=n1', n2, true],
    ['node.id==id2', n2, true],
    ['node.id==id2', n1, false],
    ['node.id!=id2', n1, true],
    ['node.role==node', n1, true],
    ['node.role==node', bare, false],
    ['node.role==store', bare, true],
    ['node.role!=node', bare, true],
    // Inherited properties are not labels.
    ['node.labels.constructor==x', bare, false],
    ['node.labels.constructor!=x', bare, true],
    // A self-reported label never satisfies node.labels: the attack of issue 15.
    ['node.labels.zone==eu', claims, false],
    ['node.labels.zone!=eu', claims, true],
    ['node.labels.zone==eu', mixed, false],
    ['node.labels.zone==us', mixed, true],
    // engine.labels read only what the node reported...
    ['engine.labels.zone==eu', claims, true],
    ['engine.labels.zone==EU', claims, true],
    ['engine.labels.zone==eu', mixed, true],
    ['engine.labels.zone==us', mixed, false],
    // ...and never the admin labels.
    ['engine.labels.zone==eu', n1, false],
    ['engine.labels.zone!=eu', n1, true],
    ['engine.labels.constructor==x', claims, false],
  ];
  for (const [expr, node, want] of cases) {
    it(`${expr} on ${node.hostname} is ${want}`, () => expect(constraintMatches(parseConstraint(expr), node)).to.equal(want));
  }
});

describe('acl constraints: explainMismatch', () => {
  const cases: [string[], NodeView, string | undefined][] = [
    [[], n1, undefined],
    [['node.labels.zone==eu', 'node.labels.disk==ssd'], n1, undefined],
    [['node.labels.zone==eu'], n2, 'constraint node.labels.zone==eu not met: node "n2" has zone=us'],
    [['node.labels.zone==eu'], bare, 'constraint node.labels.zone==eu not met: node "n3" has no label zone'],
    [['node.labels.zone!=us'], n2, 'constraint node.labels.zone!=us not met: node "n2" has zone=us'],
    [['node.hostname==n1'], n2, 'constraint node.hostname==n1 not met: node "n2" has hostname n2'],
    [['node.id==id1'], n2, 'constraint node.id==id1 not met: node "n2" has id id2'],
    [['node.role==node'], bare, 'constraint node.role==node not met: node "n3" has role store'],
    // The first unmet one is named.
    [['node.labels.zone==eu', 'node.labels.disk==hdd'], n1, 'constraint node.labels.disk==hdd not met: node "n1" has disk=ssd'],
    // A node that only claims the label is told why its claim does not count.
    [
      ['node.labels.zone==eu'],
      claims,
      'constraint node.labels.zone==eu not met: node "n4" has no label zone set by an admin (its self-reported engine.labels.zone=eu does not count; an admin sets node labels with `hush node label`)',
    ],
    [['node.labels.zone==eu'], mixed, 'constraint node.labels.zone==eu not met: node "n5" has zone=us'],
    [['engine.labels.zone==us'], claims, 'constraint engine.labels.zone==us not met: node "n4" reports engine label zone=eu'],
    [['engine.labels.zone==eu'], n1, 'constraint engine.labels.zone==eu not met: node "n1" reports no engine label zone'],
    [['engine.labels.zone==eu', 'node.labels.zone==us'], mixed, undefined],
  ];
  for (const [constraints, node, want] of cases) {
    it(`[${constraints.join(', ')}] on ${node.hostname} → ${want ?? 'met'}`, () => expect(explainMismatch(constraints, node)).to.equal(want));
  }

  it('accepts parsed constraints too', () => {
    expect(explainMismatch([parseConstraint('node.labels.zone==eu')], n2)).to.match(/has zone=us/);
  });

  it('throws on an unparsable string rather than calling it met', () => {
    expect(() => explainMismatch(['zone==eu'], n1)).to.throw(HushError, /unknown field/);
  });

  it('names a node by id when it has no hostname', () => {
    expect(explainMismatch(['node.labels.zone==eu'], { id: 'id9', hostname: '', labels: {} })).to.include('node "id9"');
  });
});
