import { expect } from 'chai';
import {
  decideContainerStart,
  diffEntitlement,
  entitledSecrets,
  validateServiceSpec,
  type NodeView,
  type ServiceSpec,
} from '../../src/acl/index.js';
import { HushError } from '../../src/errors/index.js';

const eu: NodeView = { id: 'id-eu', hostname: 'n1', labels: { zone: 'eu' } };
const us: NodeView = { id: 'id-us', hostname: 'n2', labels: { zone: 'us' } };

function service(name: string, secrets: string[], constraints: string[] = []): ServiceSpec {
  return validateServiceSpec({ name, grants: secrets.map((source) => ({ source })), constraints });
}

const services = new Map<string, ServiceSpec>([
  ['db', service('db', ['db_pw', 'tls_key'], ['node.labels.zone==eu'])],
  ['web', service('web', ['tls_key', 'api_token'])],
  ['idle', service('idle', ['never_run'])],
]);

const sorted = (s: Set<string>): string[] => [...s].sort();

describe('acl services: validateServiceSpec', () => {
  it('fills defaults and canonicalises constraints', () => {
    expect(validateServiceSpec({ name: 'web', constraints: [' node.labels.zone == eu '] })).to.deep.equal({
      name: 'web',
      grants: [],
      constraints: ['node.labels.zone==eu'],
    });
  });

  const bad: [string, unknown, string, RegExp][] = [
    ['a non-object', 'web', 'bad_request', /must be an object/],
    ['an unknown field', { name: 'web', constraint: ['node.labels.zone==eu'] }, 'unknown_field', /unknown field "constraint"/],
    ['a missing name', { grants: [] }, 'invalid_name', /service name is required/],
    ['a bad name', { name: 'we b' }, 'invalid_name', /invalid service name "we b"/],
    ['a long name', { name: 'x'.repeat(65) }, 'invalid_name', /longer than 64/],
    ['grants not a list', { name: 'web', grants: { source: 'a' } }, 'bad_request', /grants must be a list/],
    ['a bad grant', { name: 'web', grants: [{ source: 'a', target: '../x' }] }, 'bad_request', /^service "web": grant #1 \(source "a"\)/],
    ['duplicate targets', { name: 'web', grants: [{ source: 'a', target: 't' }, { source: 'b', target: 't' }] }, 'bad_request', /already used/],
    ['a bad constraint', { name: 'web', constraints: ['node.labels.zone=eu'] }, 'bad_request', /^service "web": invalid constraint "node.labels.zone=eu"/],
    ['a non-string constraint', { name: 'web', constraints: [1] }, 'bad_request', /constraints must be strings/],
  ];
  for (const [what, input, code, message] of bad) {
    it(`rejects ${what}`, () => {
      let err: unknown;
      try {
        validateServiceSpec(input);
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(HushError);
      expect((err as HushError).code).to.equal(code);
      expect((err as HushError).message).to.match(message);
    });
  }
});

describe('acl entitlement: decideContainerStart', () => {
  it('allows a matching node and returns the grants', () => {
    const d = decideContainerStart({ service: 'db', node: eu, services });
    expect(d).to.deep.equal({
      allowed: true,
      grants: [
        { source: 'db_pw', target: 'db_pw', uid: 0, gid: 0, mode: 0o444 },
        { source: 'tls_key', target: 'tls_key', uid: 0, gid: 0, mode: 0o444 },
      ],
    });
  });

  it('returns copies of the grants', () => {
    const d = decideContainerStart({ service: 'db', node: eu, services });
    if (!d.allowed) expect.fail(d.reason);
    d.grants[0]!.mode = 0o777;
    expect(services.get('db')!.grants[0]!.mode).to.equal(0o444);
  });

  it('refuses a node whose labels fail the constraint, saying which and why', () => {
    expect(decideContainerStart({ service: 'db', node: us, services })).to.deep.equal({
      allowed: false,
      reason: 'service "db" may not run on node "n2": constraint node.labels.zone==eu not met: node "n2" has zone=us',
    });
  });

  it('refuses an unknown service, naming it and pointing at hush service ls', () => {
    const d = decideContainerStart({ service: 'nope', node: eu, services });
    expect(d.allowed).to.equal(false);
    if (d.allowed) return;
    expect(d.reason).to.include('unknown service "nope"');
    expect(d.reason).to.include('hush service ls');
  });

  it('does not find services through Object.prototype', () => {
    const d = decideContainerStart({ service: 'constructor', node: eu, services: { web: services.get('web')! } });
    expect(d.allowed).to.equal(false);
  });

  it('accepts services as a plain record', () => {
    expect(decideContainerStart({ service: 'web', node: us, services: Object.fromEntries(services) }).allowed).to.equal(true);
  });

  it('refuses a revoked node even for an unconstrained service', () => {
    const d = decideContainerStart({ service: 'web', node: eu, services, nodeRevoked: true });
    expect(d.allowed).to.equal(false);
    if (d.allowed) return;
    expect(d.reason).to.match(/node "n1" has been removed.*revoked/);
  });

  it('fails closed on a stored constraint that no longer parses', () => {
    const broken: ServiceSpec = { name: 'old', grants: [], constraints: ['node.platform.os==linux'] };
    const d = decideContainerStart({ service: 'old', node: eu, services: { old: broken } });
    expect(d.allowed).to.equal(false);
    if (d.allowed) return;
    expect(d.reason).to.match(/invalid constraint "node.platform.os==linux"/);
  });
});

describe('acl entitlement: entitledSecrets', () => {
  it('gives the constrained service secrets only to the node whose labels match', () => {
    const containers = [
      { id: 'c1', service: 'db' },
      { id: 'c2', service: 'db' },
    ];
    expect(sorted(entitledSecrets(eu, containers, services))).to.deep.equal(['db_pw', 'tls_key']);
    expect(sorted(entitledSecrets(us, containers, services))).to.deep.equal([]);
  });

  it('unions over the services of the containers running on the node', () => {
    const onEu = [
      { id: 'c1', service: 'db' },
      { id: 'c2', service: 'web' },
    ];
    const onUs = [
      { id: 'c3', service: 'db' },
      { id: 'c4', service: 'web' },
    ];
    expect(sorted(entitledSecrets(eu, onEu, services))).to.deep.equal(['api_token', 'db_pw', 'tls_key']);
    expect(sorted(entitledSecrets(us, onUs, services))).to.deep.equal(['api_token', 'tls_key']);
  });

  it('never includes a secret granted only to a service with no running container', () => {
    const everything = [...services.keys()].filter((s) => s !== 'idle').map((service, i) => ({ id: `c${i}`, service }));
    for (const node of [eu, us]) expect(entitledSecrets(node, everything, services).has('never_run')).to.equal(false);
  });

  it('gives nothing for no containers, unknown services or a revoked node', () => {
    expect(entitledSecrets(eu, [], services).size).to.equal(0);
    expect(entitledSecrets(eu, [{ id: 'c1', service: 'ghost' }], services).size).to.equal(0);
    expect(entitledSecrets(eu, [{ id: 'c1', service: 'web' }], services, { nodeRevoked: true }).size).to.equal(0);
  });

  it('drops a secret when the last container of its service stops but keeps one another service shares', () => {
    const running = [
      { id: 'db-1', service: 'db' },
      { id: 'db-2', service: 'db' },
      { id: 'web-1', service: 'web' },
    ];
    const before = entitledSecrets(eu, running, services);
    // One db container stops: nothing changes, another still runs.
    const mid = entitledSecrets(eu, running.slice(1), services);
    expect(diffEntitlement(before, mid)).to.deep.equal({ added: [], removed: [] });
    // The last db container stops: db_pw goes, tls_key stays because web holds it too.
    const after = entitledSecrets(eu, running.slice(2), services);
    expect(sorted(after)).to.deep.equal(['api_token', 'tls_key']);
    expect(diffEntitlement(before, after)).to.deep.equal({ added: [], removed: ['db_pw'] });
  });

  it('gives nothing constrained to node.labels to a node that only reports the label itself', () => {
    // `hush agent --label zone=eu` with a join token: a claim, not an admin's label.
    const claimant: NodeView = { id: 'id-x', hostname: 'x', labels: {}, engineLabels: { zone: 'eu' } };
    const running = [{ id: 'c1', service: 'db' }];
    expect(sorted(entitledSecrets(claimant, running, services))).to.deep.equal([]);
    const d = decideContainerStart({ service: 'db', node: claimant, services });
    expect(d.allowed).to.equal(false);
    if (!d.allowed) expect(d.reason).to.include('self-reported engine.labels.zone=eu does not count');
    // A service that asks only for the self-reported label gets what it asked for.
    const selfReported = new Map([['edge', service('edge', ['edge_cfg'], ['engine.labels.zone==eu'])]]);
    expect(sorted(entitledSecrets(claimant, [{ id: 'c2', service: 'edge' }], selfReported))).to.deep.equal(['edge_cfg']);
    expect(sorted(entitledSecrets(eu, [{ id: 'c2', service: 'edge' }], selfReported))).to.deep.equal([]);
  });

  it('drops the secrets of a service whose constraint stops matching after a relabel', () => {
    const running = [{ id: 'db-1', service: 'db' }];
    const before = entitledSecrets(eu, running, services);
    const relabelled = { ...eu, labels: { zone: 'us' } };
    expect(diffEntitlement(before, entitledSecrets(relabelled, running, services))).to.deep.equal({ added: [], removed: ['db_pw', 'tls_key'] });
  });
});

describe('acl entitlement: diffEntitlement', () => {
  const cases: [string[], string[], { added: string[]; removed: string[] }][] = [
    [[], [], { added: [], removed: [] }],
    [[], ['b', 'a'], { added: ['a', 'b'], removed: [] }],
    [['a', 'b'], [], { added: [], removed: ['a', 'b'] }],
    [['a', 'b'], ['b', 'c'], { added: ['c'], removed: ['a'] }],
    [['a'], ['a'], { added: [], removed: [] }],
  ];
  for (const [before, after, want] of cases) {
    it(`[${before}] → [${after}]`, () => expect(diffEntitlement(new Set(before), new Set(after))).to.deep.equal(want));
  }
});

