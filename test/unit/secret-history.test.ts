/**
 * History, rollback, retention and schedules on the real engine: a version
 * beyond retention is gone with its wrapped data key from every file once the
 * log is compacted; a rollback is a new version; a scheduled rotation runs
 * once per due time, also when attempted twice, and runs after a restart.
 */
import { expect } from 'chai';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { HushError } from '../../src/errors/index.js';
import { newSchedule } from '../../src/rotation/index.js';
import { RotationScheduler } from '../../src/server/rotation-scheduler.js';
import { keys, LocalLeases, openStore, type OpenedStore } from '../../src/store/index.js';
import { rejection } from '../helpers/assert.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
const silent = pino({ level: 'silent' });

interface StoredVersion {
  version: number;
  wrappedKey: string;
  ciphertext: string;
}

/**
 * Every byte of every file in the data directory, as one buffer. The store
 * replaces snapshots in the background: a file listed may be gone when read,
 * so the directory is read again until one listing reads whole.
 */
async function dataDirBytes(dir: string): Promise<Buffer> {
  for (;;) {
    const files = await readdir(dir);
    try {
      return Buffer.concat(await Promise.all(files.map((f) => readFile(join(dir, f)))));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

describe('secret history, rollback, retention', () => {
  let dir: string;
  let store: OpenedStore;
  const open = (options: { snapshotAfterBytes?: number; keepVersions?: number } = {}) => openStore({ dataDir: join(dir, 'data'), ...options });
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await store.backend.close();
    await removeDir(dir);
  });

  it('records who made each version and how; a rollback is a new version with the old value', async () => {
    store = await open();
    await store.secrets.create('db', bytes('one'), {}, { actor: 'local-root' });
    await store.secrets.rotate('db', bytes('two'), { actor: 'cert:alice (operator)' });
    const back = await store.secrets.rollback('db', 1, { actor: 'cert:bob (admin)' });
    expect(back).to.deep.equal({ name: 'db', version: 3, from: 1 });
    expect(text((await store.secrets.reveal('db')).data)).to.equal('one');
    const detail = await store.secrets.inspect('db');
    expect(detail.versions.map((v) => [v.version, v.actor, v.origin, v.from])).to.deep.equal([
      [1, 'local-root', 'create', undefined],
      [2, 'cert:alice (operator)', 'rotate', undefined],
      [3, 'cert:bob (admin)', 'rollback', 1],
    ]);
    expect(JSON.stringify(detail)).not.to.match(/one|two/);
    const missing = await rejection(store.secrets.rollback('db', 9));
    expect((missing as HushError).code).to.equal('not_found');
    expect(detail.version, 'a refused rollback adds nothing').to.equal((await store.secrets.inspect('db')).version);
  });

  it('keeps the last K versions (per secret, or the store default), and a rotate --keep changes it', async () => {
    store = await open({ keepVersions: 3 });
    await store.secrets.create('a', bytes('v1'));
    await store.secrets.create('b', bytes('v1'), {}, { keep: 2 });
    for (let i = 2; i <= 5; i++) {
      await store.secrets.rotate('a', bytes(`v${i}`));
      await store.secrets.rotate('b', bytes(`v${i}`));
    }
    expect((await store.secrets.inspect('a')).versions.map((v) => v.version)).to.deep.equal([3, 4, 5]);
    expect((await store.secrets.inspect('b')).versions.map((v) => v.version)).to.deep.equal([4, 5]);
    expect((await store.secrets.inspect('b')).keep).to.equal(2);
    await store.secrets.rotate('a', bytes('v6'), { keep: 1 });
    expect((await store.secrets.inspect('a')).versions.map((v) => v.version)).to.deep.equal([6]);
    expect(((await rejection(store.secrets.rotate('a', bytes('x'), { keep: 0 }))) as HushError).code).to.equal('bad_request');
    expect(((await rejection(store.secrets.rollback('b', 2))) as HushError).code).to.equal('not_found');
  });

  it('destroys a dropped version: once the log is compacted no file holds its wrapped data key or ciphertext', async () => {
    // A snapshot after every commit: each compaction drops the segments before it.
    store = await open({ snapshotAfterBytes: 1 });
    await store.secrets.create('db', bytes('first value'), {}, { keep: 2 });
    const v1 = (JSON.parse((await store.backend.get(keys.secretKey('db')))!.value) as { versions: StoredVersion[] }).versions[0]!;
    // Positive control: while kept, the files hold its wrapped key and ciphertext.
    let files = (await dataDirBytes(join(dir, 'data'))).toString('latin1');
    expect(files).to.contain(v1.wrappedKey);
    expect(files).to.contain(v1.ciphertext);
    await store.secrets.rotate('db', bytes('second value'));
    await store.secrets.rotate('db', bytes('third value'));
    // One more commit: the snapshot after it is the first taken entirely after the drop.
    await store.secrets.create('other', bytes('x'));
    files = (await dataDirBytes(join(dir, 'data'))).toString('latin1');
    expect(files).not.to.contain(v1.wrappedKey);
    expect(files).not.to.contain(v1.ciphertext);
    expect(((await rejection(store.secrets.reveal('db', 1))) as HushError).code).to.equal('not_found');
    // And after a restart, from the files alone.
    await store.backend.close();
    store = await open();
    expect((await store.secrets.inspect('db')).versions.map((v) => v.version)).to.deep.equal([2, 3]);
    expect(text((await store.secrets.reveal('db', 2)).data)).to.equal('second value');
  });
});

describe('rotation schedules', () => {
  let dir: string;
  let store: OpenedStore;
  let scheduler: RotationScheduler | undefined;
  const random = (n: number) => new Uint8Array(n).fill(7);
  const open = () => openStore({ dataDir: join(dir, 'data') });
  const audited: string[] = [];
  const startScheduler = async (leases = new LocalLeases()) => {
    const s = new RotationScheduler(store, leases, random, async (e) => audited.push(`${e.actor} ${e.action} ${e.object} ${e.result}`), silent);
    await s.start();
    return s;
  };
  beforeEach(async () => {
    dir = await tempDir();
    store = await open();
    audited.length = 0;
  });
  afterEach(async () => {
    await scheduler?.stop();
    scheduler = undefined;
    await store.backend.close();
    await removeDir(dir);
  });

  it('stores the policy durably, shows it and its next due time, and removes it', async () => {
    await store.secrets.create('token', bytes('x'));
    const set = await store.secrets.setSchedule('token', newSchedule('24h', 32, 'hex', new Date()));
    expect(set.schedule).to.deep.include({ every: '24h', generate: 32, charset: 'hex' });
    expect(Date.parse(set.schedule!.nextDue) - Date.now()).to.be.within(23.9 * 3600_000, 24 * 3600_000);
    await store.backend.close();
    store = await open();
    expect((await store.secrets.inspect('token')).schedule?.every).to.equal('24h');
    expect((await store.secrets.setSchedule('token', undefined)).schedule).to.equal(undefined);
  });

  it('runs a due rotation once per due time, even when attempted twice at once', async () => {
    await store.secrets.create('token', bytes('x'));
    const t0 = new Date();
    await store.secrets.setSchedule('token', newSchedule('1h', 16, 'hex', t0));
    const due = new Date(t0.getTime() + 3600_000);
    const [a, b] = await Promise.all([store.secrets.runSchedule('token', due, random), store.secrets.runSchedule('token', due, random)]);
    expect([a?.version, b?.version].filter(Boolean)).to.deep.equal([2]);
    const detail = await store.secrets.inspect('token');
    expect(detail.version).to.equal(2);
    expect(detail.versions.at(-1)).to.include({ actor: 'scheduler', origin: 'schedule' });
    expect(text((await store.secrets.reveal('token')).data)).to.equal('07'.repeat(16));
    expect(detail.schedule?.nextDue).to.equal(new Date(due.getTime() + 3600_000).toISOString());
    expect(await store.secrets.runSchedule('token', due, random), 'not due again until the next period').to.equal(undefined);
  });

  it('the scheduler rotates every period while it holds the lease; a second scheduler waits for the lease', async () => {
    await store.secrets.create('token', bytes('x'));
    const leases = new LocalLeases();
    scheduler = await startScheduler(leases);
    let secondStarted = false;
    const second = new RotationScheduler(store, leases, random, async () => undefined, silent);
    const secondStart = second.start().then(() => (secondStarted = true));
    await store.secrets.setSchedule('token', newSchedule('1s', 8, 'alnum', new Date()));
    await until(async () => (await store.secrets.inspect('token')).version >= 3, 'two scheduled rotations', 15_000);
    expect(secondStarted).to.equal(false);
    expect(audited.filter((a) => a === 'scheduler secret.rotate secret/token ok').length).to.be.at.least(2);
    const value = text((await store.secrets.reveal('token')).data);
    expect(value).to.match(/^[0-9A-Za-z]{11}$/);
    await second.stop();
    await secondStart;
  });

  it('runs a rotation that fell due while the store was down, at start', async () => {
    await store.secrets.create('token', bytes('x'));
    await store.secrets.setSchedule('token', newSchedule('1s', 8, 'hex', new Date()));
    await store.backend.close();
    await new Promise((r) => setTimeout(r, 1200));
    store = await open();
    expect((await store.secrets.inspect('token')).version).to.equal(1);
    scheduler = await startScheduler();
    await until(async () => (await store.secrets.inspect('token')).version >= 2, 'the missed rotation to run at start', 5000);
  });
});
