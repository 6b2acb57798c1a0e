/**
 * StackStore on the real embedded engine: a deploy is one transaction,
 * idempotent, scoped to what carries the project's label; a failing plan
 * changes nothing (the store revision is the witness).
 */
import { expect } from 'chai';
import { HushError } from '../../src/errors/index.js';
import { openStore, STACK_LABEL, type DeployRequest, type OpenedStore } from '../../src/store/index.js';
import { rejection } from '../helpers/assert.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
const grant = (source: string, target = source) => ({ source, target, uid: 0, gid: 0, mode: 0o444 });

/** The shop project: one created secret, one external, two services. */
function shop(overrides: Partial<DeployRequest> = {}, values: Record<string, string> = {}): DeployRequest {
  return {
    project: 'shop',
    secrets: [
      { key: 'session_key', name: 'shop_session_key', external: false, labels: { tier: 'web' }, data: bytes(values.session_key ?? 'session-1') },
      { key: 'stripe_key', name: 'stripe_key', external: true, labels: {} },
    ],
    services: [
      { name: 'shop_web', grants: [grant('shop_session_key', 'session.key')], constraints: [] },
      { name: 'shop_api', grants: [grant('stripe_key'), grant('shop_session_key')], constraints: ['node.labels.zone==eu'] },
    ],
    prune: false,
    dryRun: false,
    ...overrides,
  };
}

async function failure(promise: Promise<unknown>): Promise<HushError> {
  const err = await rejection(promise);
  expect(err).to.be.instanceOf(HushError);
  return err as HushError;
}

describe('stack store (deploy, stacks)', () => {
  let dir: string;
  let store: OpenedStore;
  beforeEach(async () => {
    dir = await tempDir();
    store = await openStore({ dataDir: dir });
    await store.secrets.create('stripe_key', bytes('sk_live'));
  });
  afterEach(async () => {
    await store.backend.close();
    await removeDir(dir);
  });

  /** Everything a deploy could change, to compare before and after a refused one. */
  const state = async () => ({ revision: store.backend.revision(), secrets: await store.secrets.list(), services: await store.services.list() });

  it('creates the secrets and services of a project, labelled with it, in one commit', async () => {
    const before = store.backend.revision();
    const result = await store.stacks.deploy(shop());
    expect(result.revision).to.equal(before + 1);
    expect(result.actions).to.deep.equal([
      { kind: 'secret', name: 'shop_session_key', action: 'create', version: 1 },
      { kind: 'secret', name: 'stripe_key', action: 'external', version: 1 },
      { kind: 'service', name: 'shop_web', action: 'create' },
      { kind: 'service', name: 'shop_api', action: 'create' },
    ]);
    expect((await store.secrets.inspect('shop_session_key')).labels).to.deep.equal({ tier: 'web', [STACK_LABEL]: 'shop' });
    expect((await store.secrets.inspect('stripe_key')).labels, 'an external secret is not taken over').to.deep.equal({});
    expect((await store.services.get('shop_api')).labels).to.deep.equal({ [STACK_LABEL]: 'shop' });
    expect(text((await store.secrets.reveal('shop_session_key')).data)).to.equal('session-1');
    expect(JSON.stringify(result)).to.not.contain('session-1');
  });

  it('redeploys an unchanged plan without committing anything', async () => {
    await store.stacks.deploy(shop());
    const before = await state();
    const again = await store.stacks.deploy(shop());
    expect(again.actions.map((a) => a.action)).to.deep.equal(['unchanged', 'external', 'unchanged', 'unchanged']);
    expect(await state()).to.deep.equal(before);
  });

  it('makes a changed value a new version, and changed labels or grants an update', async () => {
    await store.stacks.deploy(shop());
    const changed = shop({}, { session_key: 'session-2' });
    changed.secrets[0]!.labels = { tier: 'front' };
    changed.services[0]!.constraints = ['node.hostname!=old'];
    const result = await store.stacks.deploy(changed);
    expect(result.actions.slice(0, 1)).to.deep.equal([{ kind: 'secret', name: 'shop_session_key', action: 'version', version: 2 }]);
    expect(result.actions.find((a) => a.name === 'shop_web')!.action).to.equal('update');
    expect(result.actions.find((a) => a.name === 'shop_api')!.action).to.equal('unchanged');
    expect(text((await store.secrets.reveal('shop_session_key')).data)).to.equal('session-2');
    expect((await store.secrets.inspect('shop_session_key')).labels).to.deep.equal({ tier: 'front', [STACK_LABEL]: 'shop' });

    const relabel = shop({}, { session_key: 'session-2' });
    relabel.secrets[0]!.labels = { tier: 'back' };
    const update = await store.stacks.deploy(relabel);
    expect(update.actions[0]).to.deep.equal({ kind: 'secret', name: 'shop_session_key', action: 'update', version: 2 });
  });

  it('dry run reports the actions and changes nothing', async () => {
    const before = await state();
    const result = await store.stacks.deploy(shop({ dryRun: true }));
    expect(result.dryRun).to.equal(true);
    expect(result.actions.map((a) => `${a.action} ${a.name}`)).to.deep.equal(['create shop_session_key', 'external stripe_key', 'create shop_web', 'create shop_api']);
    expect(await state()).to.deep.equal(before);
  });

  it('prunes only what carries the project label and is no longer in the plan', async () => {
    await store.secrets.create('handmade', bytes('x'));
    await store.stacks.deploy({ ...shop(), secrets: [...shop().secrets, { key: 'old', name: 'shop_old', external: false, labels: {}, data: bytes('o') }], services: [...shop().services, { name: 'shop_old', grants: [grant('shop_old')], constraints: [] }] });
    await store.stacks.deploy({ ...shop(), project: 'other', secrets: [{ key: 'k', name: 'other_k', external: false, labels: {}, data: bytes('k') }], services: [] });

    const kept = await store.stacks.deploy(shop());
    expect(kept.actions.some((a) => a.action === 'remove'), 'without prune nothing is removed').to.equal(false);
    const pruned = await store.stacks.deploy(shop({ prune: true }));
    expect(pruned.actions.filter((a) => a.action === 'remove')).to.deep.equal([
      { kind: 'service', name: 'shop_old', action: 'remove' },
      { kind: 'secret', name: 'shop_old', action: 'remove' },
    ]);
    expect((await store.secrets.list()).map((s) => s.name).sort()).to.deep.equal(['handmade', 'other_k', 'shop_session_key', 'stripe_key']);
    expect((await store.services.list()).map((s) => s.name).sort()).to.deep.equal(['shop_api', 'shop_web']);
  });

  it('refuses to prune a secret that a service outside the project uses, and changes nothing', async () => {
    await store.stacks.deploy({ ...shop(), secrets: [...shop().secrets, { key: 'old', name: 'shop_old', external: false, labels: {}, data: bytes('o') }] });
    await store.services.put({ name: 'outsider', grants: [grant('shop_old')], constraints: [] });
    const before = await state();
    const err = await failure(store.stacks.deploy(shop({ prune: true })));
    expect(err.code).to.equal('in_use');
    expect(err.message).to.match(/secret "shop_old" would be removed .* service outsider uses it/);
    expect(await state()).to.deep.equal(before);
  });

  it('refuses a missing external secret, naming every missing one, and changes nothing', async () => {
    const before = await state();
    const plan = shop();
    plan.secrets.push({ key: 'db', name: 'db_password', external: true, labels: {} }, { key: 'tls', name: 'tls_cert', external: true, labels: {} });
    const err = await failure(store.stacks.deploy(plan));
    expect(err.code).to.equal('not_found');
    expect(err.message).to.equal('external secrets "db_password", "tls_cert" do not exist; create them first (`hush secret create NAME FILE`), or drop external: to let the deploy create them');
    expect(await state()).to.deep.equal(before);
  });

  it('never takes over an object without the project label (handmade, or of another project)', async () => {
    await store.secrets.create('shop_session_key', bytes('handmade'));
    const before = await state();
    const err = await failure(store.stacks.deploy(shop()));
    expect(err.code).to.equal('conflict');
    expect(err.message).to.match(/would take over secret "shop_session_key", which exists without the label com\.docker\.stack\.namespace=shop/);
    expect(await state()).to.deep.equal(before);
    expect(text((await store.secrets.reveal('shop_session_key')).data)).to.equal('handmade');

    await store.secrets.remove('shop_session_key');
    await store.stacks.deploy(shop());
    const err2 = await failure(store.stacks.deploy({ ...shop(), project: 'evil', services: [] }));
    expect(err2.message).to.match(/secret "shop_session_key" \(of project "shop"\)/);
  });

  it('is atomic: a bad value late in the plan leaves the earlier secrets uncreated', async () => {
    const before = await state();
    const plan = shop();
    plan.secrets.push({ key: 'big', name: 'shop_big', external: false, labels: {}, data: new Uint8Array(store.secrets.maxValueBytes + 1) });
    const err = await failure(store.stacks.deploy(plan));
    expect(err.code).to.equal('too_large');
    expect(await state()).to.deep.equal(before);
  });

  it('checks the plan itself: names, references, the project prefix, data of external secrets', async () => {
    const before = await state();
    const cases: [DeployRequest, RegExp][] = [
      [shop({ project: 'Shop' }), /invalid project name "Shop"/],
      [{ ...shop(), services: [{ name: 'web', grants: [], constraints: [] }] }, /the services of project "shop" are named "shop_<service>"/],
      [{ ...shop(), services: [{ name: 'shop_x', grants: [grant('stripe_keyy')], constraints: [] }] }, /grant of "stripe_keyy", which is not one of the plan's secrets/],
      [{ ...shop(), secrets: [{ key: 'k', name: 'k', external: true, labels: {}, data: bytes('x') }], services: [] }, /is external .* carries no data/],
      [{ ...shop(), secrets: [{ key: 'k', name: 'shop_k', external: false, labels: {} }], services: [] }, /needs data/],
      [{ ...shop(), secrets: [{ key: 'k', name: '../k', external: false, labels: {}, data: bytes('x') }], services: [] }, /invalid secret name "\.\.\/k"/],
      [{ ...shop(), secrets: [{ key: 'k', name: 'shop_k', external: false, labels: { [STACK_LABEL]: 'other' }, data: bytes('x') }], services: [] }, /does not match project "shop"/],
      [{ ...shop(), secrets: [...shop().secrets, shop().secrets[0]!] }, /two secrets of the plan are stored as "shop_session_key"/],
    ];
    for (const [plan, message] of cases) {
      const err = await failure(store.stacks.deploy(plan));
      expect(err.status, message.source).to.be.within(400, 499);
      expect(err.message).to.match(message);
    }
    expect(await state()).to.deep.equal(before);
  });

  it('lists stacks with their counts and removes one stack in one commit', async () => {
    await store.stacks.deploy(shop());
    await store.stacks.deploy({ project: 'blog', secrets: [{ key: 'k', name: 'blog_k', external: false, labels: {}, data: bytes('k') }], services: [{ name: 'blog_app', grants: [grant('blog_k')], constraints: [] }], prune: false, dryRun: false });
    expect(await store.stacks.list()).to.deep.equal([
      { name: 'blog', secrets: 1, services: 1 },
      { name: 'shop', secrets: 1, services: 2 },
    ]);
    const before = store.backend.revision();
    const removed = await store.stacks.remove('shop');
    expect(store.backend.revision()).to.equal(before + 1);
    expect(removed.map((a) => `${a.kind} ${a.name}`).sort()).to.deep.equal(['secret shop_session_key', 'service shop_api', 'service shop_web']);
    expect((await store.secrets.list()).map((s) => s.name).sort(), 'the external secret stays').to.deep.equal(['blog_k', 'stripe_key']);
    expect((await failure(store.stacks.remove('shop'))).code).to.equal('not_found');
  });

  it('refuses to remove a stack whose secret a service outside it uses', async () => {
    await store.stacks.deploy(shop());
    await store.services.put({ name: 'outsider', grants: [grant('shop_session_key')], constraints: [] });
    const before = await state();
    const err = await failure(store.stacks.remove('shop'));
    expect(err.code).to.equal('in_use');
    expect(await state()).to.deep.equal(before);
  });

  it('updates a service in one transaction, keeping its labels, and refuses grants of missing secrets', async () => {
    await store.stacks.deploy(shop());
    const updated = await store.services.update('shop_web', (s) => ({ ...s, grants: [...s.grants, grant('stripe_key')], constraints: ['node.labels.zone==eu'] }));
    expect(updated.grants.map((g) => g.source)).to.deep.equal(['shop_session_key', 'stripe_key']);
    expect(updated.labels).to.deep.equal({ [STACK_LABEL]: 'shop' });
    const before = await state();
    const err = await failure(store.services.update('shop_web', (s) => ({ ...s, grants: [grant('nope')] })));
    expect(err.code).to.equal('not_found');
    expect(await state()).to.deep.equal(before);
    expect((await failure(store.services.update('nope', (s) => s))).code).to.equal('not_found');
  });
});
