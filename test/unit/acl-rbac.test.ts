import { expect } from 'chai';
import { ACTIONS, actionForRequest, actionsOf, assertCan, can, routePattern, type Action } from '../../src/acl/index.js';
import { HushError } from '../../src/errors/index.js';

/** The expected matrix, written out by hand so a change to the grants in rbac.ts shows up here. */
const Y = true;
const N = false;
const MATRIX: Record<Action, [admin: boolean, operator: boolean, auditor: boolean]> = {
  'secret.read': [Y, Y, Y],
  'secret.write': [Y, Y, N],
  'secret.delete': [Y, N, N],
  'service.read': [Y, Y, Y],
  'service.write': [Y, Y, N],
  deploy: [Y, Y, N],
  'node.read': [Y, Y, Y],
  'node.write': [Y, N, N],
  'token.read': [Y, N, N],
  'token.rotate': [Y, N, N],
  'key.rotate': [Y, N, N],
  'cert.read': [Y, N, N],
  'cert.issue': [Y, N, N],
  'cert.revoke': [Y, N, N],
  'store.unlock': [Y, N, N],
  'audit.read': [Y, Y, Y],
  'metrics.read': [Y, Y, Y],
  unclassified: [Y, N, N],
};

describe('acl rbac: can / assertCan', () => {
  it('the matrix covers every action', () => expect(Object.keys(MATRIX).sort()).to.deep.equal([...ACTIONS].sort()));

  for (const action of ACTIONS) {
    (['admin', 'operator', 'auditor'] as const).forEach((role, i) => {
      const want = MATRIX[action][i];
      it(`${role} ${want ? 'may' : 'may not'} ${action}`, () => {
        expect(can(role, action)).to.equal(want);
        if (want) expect(() => assertCan(role, action)).not.to.throw();
        else expect(() => assertCan(role, action)).to.throw(HushError, `role "${role}" may not ${action}; ask an admin`);
      });
    });
  }

  for (const role of ['', 'root', 'Admin', 'constructor', '__proto__']) {
    it(`unknown role ${JSON.stringify(role)} may do nothing`, () => {
      for (const action of ACTIONS) expect(can(role, action), action).to.equal(false);
      let err: unknown;
      try {
        assertCan(role, 'secret.read');
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(HushError);
      expect((err as HushError).code).to.equal('forbidden');
      expect((err as HushError).status).to.equal(403);
      expect((err as HushError).message).to.include(`unknown role "${role}"`);
    });
  }

  it('each role includes the one below it', () => {
    for (const a of actionsOf('auditor')) expect(can('operator', a), a).to.equal(true);
    for (const a of actionsOf('operator')) expect(can('admin', a), a).to.equal(true);
  });

  it('no action is named after reading secret values', () => {
    expect(ACTIONS.filter((a) => /value|data|reveal/.test(a))).to.deep.equal([]);
  });
});

describe('acl rbac: actionForRequest', () => {
  const cases: [string, string, Action | undefined][] = [
    // unauthenticated-safe
    ['GET', '/_ping', undefined],
    ['HEAD', '/_ping', undefined],
    ['GET', '/healthz', undefined],
    ['GET', '/version', undefined],
    ['GET', '/v1.43/_ping', undefined],
    ['HEAD', '/v1.41/_ping', undefined],
    ['GET', '/v1.43/version', undefined],
    // native secrets
    ['GET', '/v1/secrets', 'secret.read'],
    ['GET', '/v1/secrets/', 'secret.read'],
    ['GET', '/v1/secrets?format=json', 'secret.read'],
    ['POST', '/v1/secrets', 'secret.write'],
    ['GET', '/v1/secrets/db_pw', 'secret.read'],
    ['DELETE', '/v1/secrets/db_pw', 'secret.delete'],
    ['POST', '/v1/secrets/db_pw/rotate', 'secret.write'],
    ['GET', '/v1/secrets/db_pw/propagation?version=3', 'secret.read'],
    ['GET', '/v1/secrets/db_pw/versions', 'secret.read'],
    ['PUT', '/v1/secrets/db_pw', 'unclassified'],
    ['GET', '/v1/secrets/db_pw/rotate', 'unclassified'],
    // services, nodes, deploy
    ['GET', '/v1/services', 'service.read'],
    ['POST', '/v1/services', 'service.write'],
    ['GET', '/v1/services/web', 'service.read'],
    ['DELETE', '/v1/services/web', 'service.write'],
    ['GET', '/v1/nodes', 'node.read'],
    ['GET', '/v1/nodes/n1', 'node.read'],
    ['DELETE', '/v1/nodes/n1', 'node.write'],
    ['POST', '/v1/nodes/n1/labels', 'node.write'],
    ['POST', '/v1/nodes', 'unclassified'],
    ['POST', '/v1/deploy', 'deploy'],
    ['GET', '/v1/deploy', 'unclassified'],
    ['POST', '/v1/services/db/update', 'service.write'],
    ['GET', '/v1/stacks', 'service.read'],
    ['DELETE', '/v1/stacks/shop', 'deploy'],
    ['POST', '/v1/stacks/shop', 'unclassified'],
    // cluster administration
    ['GET', '/v1/join-token', 'token.read'],
    ['POST', '/v1/join-token/rotate', 'token.rotate'],
    ['POST', '/v1/join-token', 'token.rotate'],
    ['POST', '/v1/key/rotate', 'key.rotate'],
    ['POST', '/v1/ca/rotate', 'key.rotate'],
    ['GET', '/v1/ca', 'cert.read'],
    ['GET', '/v1/certs', 'cert.read'],
    ['POST', '/v1/certs', 'cert.issue'],
    ['POST', '/v1/certs/alice/renew', 'cert.issue'],
    ['POST', '/v1/certs/alice/revoke', 'cert.revoke'],
    ['POST', '/v1/certs/4f0e9a7b2c1d3e5f60718293a4b5c6d7/revoke', 'cert.revoke'],
    ['GET', '/v1/certs/alice', 'unclassified'],
    ['DELETE', '/v1/certs/alice', 'unclassified'],
    ['POST', '/v1/unlock', 'store.unlock'],
    ['GET', '/v1/audit', 'audit.read'],
    ['GET', '/v1/audit/verify', 'audit.read'],
    ['GET', '/metrics', 'metrics.read'],
    // Docker-compatible
    ['GET', '/v1.43/info', 'node.read'],
    ['GET', '/info', 'node.read'],
    ['GET', '/v1.43/secrets', 'secret.read'],
    ['GET', '/secrets', 'secret.read'],
    ['GET', '/v1.41/secrets?filters=%7B%7D', 'secret.read'],
    ['POST', '/v1.43/secrets/create', 'secret.write'],
    ['GET', '/v1.43/secrets/abc123', 'secret.read'],
    ['DELETE', '/v1.43/secrets/abc123', 'secret.delete'],
    ['POST', '/v1.43/secrets/abc123/update', 'secret.write'],
    ['POST', '/v1.43/containers/create', 'unclassified'],
    ['GET', '/v2.0/secrets', 'unclassified'],
    // express matches case-insensitively, so must we
    ['POST', '/V1/KEY/ROTATE', 'key.rotate'],
    ['post', '/V1/Certs/alice/REVOKE', 'cert.revoke'],
    ['GET', '/V1.43/Secrets', 'secret.read'],
    // paths a router might resolve differently are never public and never a lesser action
    ['GET', '/v1/secrets/../join-token', 'unclassified'],
    ['GET', '/v1/secrets/%2e%2e', 'unclassified'],
    ['GET', '/v1/secrets/a%2fb', 'unclassified'],
    ['GET', '/v1//secrets', 'unclassified'],
    ['GET', '/_ping/../v1/join-token', 'unclassified'],
    ['GET', '/v1/secrets/%zz', 'unclassified'],
    ['GET', 'v1/secrets', 'unclassified'],
    ['GET', '/', 'unclassified'],
    ['GET', '/nope', 'unclassified'],
    ['OPTIONS', '/v1/secrets', 'unclassified'],
    ['POST', '/_ping', 'unclassified'],
    ['POST', '/healthz', 'unclassified'],
    // the OpenAPI document and metrics
    ['GET', '/v1/openapi.json', undefined],
    ['POST', '/v1/openapi.json', 'unclassified'],
    ['GET', '/v1.41/metrics', 'unclassified'],
    ['HEAD', '/metrics', 'metrics.read'],
    // Docker prefixes cannot lead into the native table or dodge a rule
    ['GET', '/v1.41/../v1/join-token', 'unclassified'],
    ['GET', '/v1.41/%2e%2e/v1/join-token', 'unclassified'],
    ['GET', '/v1.41/v1/join-token', 'unclassified'],
    ['POST', '/v1.41//secrets/create', 'unclassified'],
    ['POST', '/v1.41/secrets%2Fcreate', 'unclassified'],
    ['POST', '/v1.41/./secrets/create', 'unclassified'],
    ['POST', '/v1.41/secrets/create/', 'secret.write'],
    ['POST', '/V1.41/SECRETS/CREATE', 'secret.write'],
    ['GET', '/v1.41/secrets/create', 'secret.read'],
    ['DELETE', '/v1.41/secrets/a%2F..%2F..%2Fv1%2Fjoin-token', 'unclassified'],
    ['GET', '/v1.41.2/secrets', 'unclassified'],
    ['GET', '/v1./secrets', 'unclassified'],
    ['GET', '/v1.41', 'unclassified'],
    ['GET', '/v1.41/', 'unclassified'],
    ['HEAD', '/v1.50/_ping', undefined],
  ];
  for (const [method, path, want] of cases) {
    it(`${method} ${path} → ${want ?? '(public)'}`, () => expect(actionForRequest(method, path)).to.equal(want));
  }
});

describe('acl routes: routePattern (metrics labels)', () => {
  const cases: [string, string, string][] = [
    ['GET', '/v1/secrets/db_password', '/v1/secrets/:name'],
    ['GET', '/V1/SECRETS/db_password/', '/v1/secrets/:name'],
    ['POST', '/v1/secrets?x=1', '/v1/secrets'],
    ['DELETE', '/v1.43/secrets/abc123', '/v1.NN/secrets/:id'],
    ['HEAD', '/_ping', '/_ping'],
    ['GET', '/metrics', '/metrics'],
    ['GET', '/v1/secrets/../join-token', 'unmatched'],
    ['GET', '/some/path/chosen/by/a/client', 'unmatched'],
    ['PUT', '/v1/secrets/db_password', 'unmatched'],
  ];
  for (const [method, path, want] of cases) {
    it(`${method} ${path} → ${want}`, () => expect(routePattern(method, path)).to.equal(want));
  }

  it('never echoes the request: every label is a pattern of the table or "unmatched"', () => {
    for (const path of ['/v1/secrets/s3cr3t_name', '/v1.41/secrets/s3cr3t_name', '/s3cr3t_name', '/v1/nodes/s3cr3t_name/labels']) {
      expect(routePattern('GET', path)).not.to.contain('s3cr3t');
    }
  });
});
