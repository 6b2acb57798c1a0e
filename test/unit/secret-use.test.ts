import { expect } from 'chai';
import { HushError } from '../../src/errors/index.js';
import { Envelope, keys, loadSodium, openStore, SecretStore, ServiceStore, type Backend, type KvTxn, type OpenedStore } from '../../src/store/index.js';
import { rejection } from '../helpers/assert.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const grant = (source: string) => ({ source, target: source, uid: 0, gid: 0, mode: 0o444 });

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Forwards to a real backend, but holds the first commit that `matches` until released, telling the test once it is held. */
class PausingBackend implements Backend {
  readonly held = deferred();
  private readonly release = deferred();
  private paused = false;

  constructor(
    private readonly inner: Backend,
    private readonly matches: (txn: KvTxn) => boolean,
  ) {}

  resume(): void {
    this.release.resolve();
  }

  async commit(txn: KvTxn): Promise<number> {
    if (!this.paused && this.matches(txn)) {
      this.paused = true;
      this.held.resolve();
      await this.release.promise;
    }
    return this.inner.commit(txn);
  }

  get = (key: string) => this.inner.get(key);
  list = (prefix: string) => this.inner.list(prefix);
  revision = () => this.inner.revision();
  watch = (listener: Parameters<Backend['watch']>[0]) => this.inner.watch(listener);
  close = () => this.inner.close();
}

describe('secret in use: decided inside the delete transaction', () => {
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

  it('refuses to delete a secret a service uses, naming the service, and changes nothing', async () => {
    await store.secrets.create('db_pw', bytes('x'));
    await store.services.put({ name: 'db', grants: [grant('db_pw')], constraints: [] });
    const err = await rejection(store.secrets.remove('db_pw'));
    expect(err).to.be.instanceOf(HushError);
    expect((err as HushError).code).to.equal('in_use');
    expect(err.message).to.equal('secret "db_pw" is used by service db; remove or update it first');
    expect((await store.secrets.inspect('db_pw')).name).to.equal('db_pw');
  });

  it('frees the secret once the service drops the grant or is removed', async () => {
    await store.secrets.create('a', bytes('x'));
    await store.secrets.create('b', bytes('y'));
    await store.services.put({ name: 'one', grants: [grant('a'), grant('b')], constraints: [] });
    await store.services.put({ name: 'two', grants: [grant('a')], constraints: [] });
    expect((await rejection(store.secrets.remove('a'))).message).to.contain('used by services one, two');
    await store.services.put({ name: 'one', grants: [grant('b')], constraints: [] }, { replace: true });
    expect((await rejection(store.secrets.remove('a'))).message).to.contain('used by service two;');
    await store.services.remove('two');
    await store.secrets.remove('a');
    expect(await store.backend.list(keys.secretUsersPrefix('a'))).to.deep.equal([]);
    expect(await store.backend.get(keys.secretUseKey('a'))).to.equal(undefined);
    expect((await store.backend.list(keys.secretUsersPrefix('b'))).map((e) => e.key)).to.deep.equal([keys.secretUserKey('b', 'one')]);
  });

  it('a service created between the in-use check and the delete commit makes the delete refuse', async () => {
    await store.secrets.create('db_pw', bytes('x'));
    // The delete runs over a backend that holds its commit: the in-use check has passed (no service yet) when it is held.
    const pausing = new PausingBackend(store.backend, (txn) => txn.ops.some((op) => op.type === 'delete' && op.key === keys.secretKey('db_pw')));
    const secrets = new SecretStore(pausing, store.keyring, new Envelope(await loadSodium()));
    const removal = rejection(secrets.remove('db_pw'));
    await pausing.held.promise;
    // Meanwhile a service starts using the secret; its commit lands first.
    await new ServiceStore(store.backend).put({ name: 'db', grants: [grant('db_pw')], constraints: [] });
    pausing.resume();
    const err = await removal;
    expect((err as HushError).code).to.equal('in_use');
    // The service's grant still points at a secret that exists.
    expect((await store.services.get('db')).grants[0]!.source).to.equal('db_pw');
    expect((await store.secrets.inspect('db_pw')).name).to.equal('db_pw');
  });

  it('records the uses of services written before uses were recorded, at open', async () => {
    await store.secrets.create('db_pw', bytes('x'));
    await store.services.put({ name: 'db', grants: [grant('db_pw')], constraints: [] });
    // As data written before this version: the service record without its use keys.
    await store.backend.commit({ ops: [{ type: 'delete', key: keys.secretUserKey('db_pw', 'db') }] });
    expect(await store.backend.list(keys.secretUsersPrefix('db_pw'))).to.deep.equal([]);
    await store.backend.close();
    store = await openStore({ dataDir: dir });
    expect((await store.backend.list(keys.secretUsersPrefix('db_pw'))).map((e) => e.key)).to.deep.equal([keys.secretUserKey('db_pw', 'db')]);
    expect((await rejection(store.secrets.remove('db_pw'))).message).to.contain('used by service db');
    expect(await store.services.migrateSecretUses()).to.equal(0);
  });
});
