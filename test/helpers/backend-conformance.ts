/**
 * The storage conformance suite: what every `Backend` (src/store/backend.ts)
 * must do, run against each implementation, as Vault runs its ExerciseBackend
 * against every physical backend. A test here states the contract the store
 * relies on; a backend that fails one is not interchangeable.
 *
 * A backend is described by a `ConformanceTarget`: how to make fresh, empty
 * storage, open a backend on it (again and again: a reopen must see every
 * acknowledged commit), and throw it away. The crash test opens the same
 * storage from a child process (backend-crash-writer.ts), so the target lives
 * in a module the child can import, named in `module`.
 *
 * Revisions are checked relative to the revision the storage had when the
 * test started (an etcd cluster does not start at 0), and the suite assumes
 * nothing else writes the storage during a test. Every commit here writes
 * something: a transaction that changes nothing is not given a revision by
 * etcd, so the suite leaves that case unspecified; so is whether a watch
 * reports the delete of a key that was absent (etcd's does not), and the
 * order in which commits in flight together are given their revisions.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { ConflictError, type Backend, type KvEvent, type KvOp, type KvTxn } from '../../src/store/index.js';
import { rejection } from './assert.js';
import { until } from './until.js';

export interface ConformanceTarget<C = unknown> {
  /** Fresh, empty storage for one test; JSON-serialisable (a data directory, an etcd key prefix). */
  create(): Promise<C>;
  /** Opens a backend on the storage; called again after `close` to reopen it. */
  open(context: C): Promise<Backend>;
  destroy(context: C): Promise<void>;
  /** Where this target is exported (file URL of the module, and the export's name), for the crash writer's child process. */
  module: { url: string; exportName: string };
}

const put = (key: string, value: string): KvOp => ({ type: 'put', key, value });
const del = (key: string): KvOp => ({ type: 'delete', key });
const txn = (...ops: KvOp[]): KvTxn => ({ ops });
const keysOf = (entries: { key: string }[]) => entries.map((e) => e.key);

/** A watcher that records every event and waits for a given revision. */
function recorder(backend: Backend): { events: KvEvent[]; stop: () => void; seen: (revision: number) => Promise<void> } {
  const events: KvEvent[] = [];
  const stop = backend.watch((event) => events.push(event));
  // Some backends deliver events after the commit resolves (an etcd watch stream): wait for them, never assume.
  const seen = (revision: number) => until(() => events.some((e) => e.revision >= revision), `a watch event for revision ${revision}`, 10_000, 5);
  return { events, stop, seen };
}

export function describeBackendConformance<C>(name: string, target: ConformanceTarget<C>): void {
  describe(`storage conformance: ${name}`, function () {
    let context: C;
    /** Every backend a test opened, closed after it even when it fails. */
    let opened: Backend[];
    let base: number;
    const open = async () => {
      const backend = await target.open(context);
      opened.push(backend);
      return backend;
    };
    /** Closes a backend and opens the storage again, as a restart does. */
    const reopen = async (backend: Backend) => {
      await backend.close();
      opened.splice(opened.indexOf(backend), 1);
      return open();
    };

    beforeEach(async () => {
      opened = [];
      context = await target.create();
      // Opened once before the test, so that what it opens is a reopen of storage that exists.
      const probe = await target.open(context);
      base = probe.revision();
      await probe.close();
    });
    afterEach(async () => {
      for (const backend of opened) await backend.close();
      await target.destroy(context);
    });

    describe('get and list', () => {
      it('reads nothing from empty storage', async () => {
        const db = await open();
        expect(await db.get('a')).to.equal(undefined);
        expect(await db.list('')).to.deep.equal([]);
        expect(await db.list('a/')).to.deep.equal([]);
      });

      it('returns key, value and the revision that wrote it, exactly as written', async () => {
        const db = await open();
        const values = ['', 'plain', 'line\nbreak and "quotes" \\ and \u0000 nul', 'ünïcödé ✓ 🔑', 'x'.repeat(256 * 1024)];
        const revisions: number[] = [];
        for (const [i, value] of values.entries()) revisions.push(await db.commit(txn(put(`v/${i}`, value))));
        for (const [i, value] of values.entries()) expect(await db.get(`v/${i}`)).to.deep.equal({ key: `v/${i}`, value, modRevision: revisions[i] });
        const again = await reopen(db);
        for (const [i, value] of values.entries()) expect(await again.get(`v/${i}`)).to.deep.equal({ key: `v/${i}`, value, modRevision: revisions[i] });
      });

      it('lists exactly the keys that start with the prefix, in key order', async () => {
        const db = await open();
        const keys = ['a/9', 'a', 'a/10', 'ab/1', 'a/B', 'b/a/1', 'a/a', 'a/', 'a/b/c', 'A/1'];
        for (const key of keys) await db.commit(txn(put(key, `value of ${key}`)));
        expect(keysOf(await db.list('a/'))).to.deep.equal(['a/', 'a/10', 'a/9', 'a/B', 'a/a', 'a/b/c']);
        expect(keysOf(await db.list('a'))).to.deep.equal(['a', 'a/', 'a/10', 'a/9', 'a/B', 'a/a', 'a/b/c', 'ab/1']);
        expect(keysOf(await db.list('a/b'))).to.deep.equal(['a/b/c']);
        expect(keysOf(await db.list(''))).to.deep.equal([...keys].sort());
        expect(await db.list('c/')).to.deep.equal([]);
        const listed = await db.list('b/');
        expect(listed).to.deep.equal([{ key: 'b/a/1', value: 'value of b/a/1', modRevision: (await db.get('b/a/1'))!.modRevision }]);
      });

      it('lists a prefix without the keys deleted under it', async () => {
        const db = await open();
        await db.commit(txn(put('p/1', '1'), put('p/2', '2'), put('p/3', '3')));
        await db.commit(txn(del('p/2')));
        expect(keysOf(await db.list('p/'))).to.deep.equal(['p/1', 'p/3']);
        expect(await db.get('p/2')).to.equal(undefined);
      });
    });

    describe('commit and revisions', () => {
      it('gives each commit the next revision, one more than the last, and reports it from revision()', async () => {
        const db = await open();
        expect(db.revision()).to.equal(base);
        for (let i = 1; i <= 5; i++) {
          expect(await db.commit(txn(put(`k${i}`, String(i))))).to.equal(base + i);
          expect(db.revision()).to.equal(base + i);
        }
        expect(await db.commit(txn(del('k1')))).to.equal(base + 6);
        expect(db.revision()).to.equal(base + 6);
      });

      it('gives concurrent commits distinct consecutive revisions, each matching the keys it wrote', async () => {
        const db = await open();
        const revisions = await Promise.all(Array.from({ length: 50 }, (_, i) => db.commit(txn(put(`c/${String(i).padStart(2, '0')}`, String(i))))));
        expect([...revisions].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 50 }, (_, i) => base + 1 + i));
        for (const [i, revision] of revisions.entries()) expect((await db.get(`c/${String(i).padStart(2, '0')}`))?.modRevision).to.equal(revision);
        expect(db.revision()).to.equal(base + 50);
      });

      it('applies every operation of a transaction at one revision: puts, overwrites and deletes together', async () => {
        const db = await open();
        const first = await db.commit(txn(put('t/a', '1'), put('t/b', '1'), put('t/c', '1')));
        const second = await db.commit(txn(put('t/a', '2'), del('t/b'), put('t/d', '2')));
        expect(second).to.equal(first + 1);
        expect(await db.list('t/')).to.deep.equal([
          { key: 't/a', value: '2', modRevision: second },
          { key: 't/c', value: '1', modRevision: first },
          { key: 't/d', value: '2', modRevision: second },
        ]);
      });

      it('makes a deleted key absent, and a put after it starts over', async () => {
        const db = await open();
        await db.commit(txn(put('k', 'one')));
        await db.commit(txn(del('k')));
        expect(await db.get('k')).to.equal(undefined);
        const revision = await db.commit(txn(put('k', 'two')));
        expect(await db.get('k')).to.deep.equal({ key: 'k', value: 'two', modRevision: revision });
      });
    });

    describe('conditions', () => {
      it('commits when every condition holds: modRevision equal, 0 for an absent key', async () => {
        const db = await open();
        const written = await db.commit(txn(put('x', '1')));
        const revision = await db.commit({ conditions: [{ key: 'x', modRevision: written }, { key: 'y', modRevision: 0 }], ops: [put('x', '2'), put('y', '2')] });
        expect(revision).to.equal(written + 1);
        expect((await db.get('x'))?.value).to.equal('2');
        expect((await db.get('y'))?.value).to.equal('2');
      });

      it('treats a deleted key as absent (0)', async () => {
        const db = await open();
        await db.commit(txn(put('gone', '1')));
        await db.commit(txn(del('gone')));
        await db.commit({ conditions: [{ key: 'gone', modRevision: 0 }], ops: [put('gone', 'back')] });
        expect((await db.get('gone'))?.value).to.equal('back');
      });

      /** Each: a transaction whose conditions fail, and the key of the condition that fails. x and y exist, `absent` does not. */
      const refusals: [string, (written: number) => KvTxn, string][] = [
        ['a stale modRevision', (written) => ({ conditions: [{ key: 'x', modRevision: written - 1 }], ops: [put('x', 'lost')] }), 'x'],
        ['a later modRevision', (written) => ({ conditions: [{ key: 'x', modRevision: written + 1 }], ops: [put('x', 'lost')] }), 'x'],
        ['0 for a key that exists', () => ({ conditions: [{ key: 'x', modRevision: 0 }], ops: [put('x', 'lost')] }), 'x'],
        ['a modRevision for a key that is absent', (written) => ({ conditions: [{ key: 'absent', modRevision: written }], ops: [put('absent', 'lost')] }), 'absent'],
        [
          'one failing condition among holding ones',
          (written) => ({ conditions: [{ key: 'x', modRevision: written }, { key: 'absent', modRevision: 0 }, { key: 'y', modRevision: 0 }], ops: [put('x', 'lost'), del('y'), put('absent', 'lost')] }),
          'y',
        ],
      ];
      for (const [what, make, failingKey] of refusals) {
        it(`refuses ${what} with ConflictError naming the key, and changes nothing`, async () => {
          const db = await open();
          await db.commit(txn(put('y', 'kept')));
          const written = await db.commit(txn(put('x', 'kept')));
          const before = await db.list('');
          const watched = recorder(db);
          const err = await rejection(db.commit(make(written)));
          expect(err).to.be.instanceOf(ConflictError);
          expect((err as ConflictError).key).to.equal(failingKey);
          expect(db.revision()).to.equal(written);
          expect(await db.list('')).to.deep.equal(before);
          // Nothing was committed: the next commit gets the very next revision, and it is the first event the watcher sees.
          expect(await db.commit(txn(put('after', '1')))).to.equal(written + 1);
          await watched.seen(written + 1);
          expect(watched.events.map((e) => e.revision)).to.deep.equal([written + 1]);
          const again = await reopen(db);
          expect(again.revision()).to.equal(written + 1);
          expect((await again.get('x'))?.value).to.equal('kept');
        });
      }

      it('lets exactly one of two racing create-if-absent commits win', async () => {
        const db = await open();
        const outcomes = await Promise.allSettled([1, 2].map((n) => db.commit({ conditions: [{ key: 'lock', modRevision: 0 }], ops: [put('lock', `holder ${n}`)] })));
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(won).to.have.length(1);
        expect(lost).to.have.length(1);
        expect(lost[0]!.reason).to.be.instanceOf(ConflictError);
        expect((await db.get('lock'))?.value).to.equal(outcomes[0]!.status === 'fulfilled' ? 'holder 1' : 'holder 2');
      });
    });

    describe('watch', () => {
      it('tells a watcher about each commit once, in revision order, with its typed operations', async () => {
        const db = await open();
        const watched = recorder(db);
        const r1 = await db.commit(txn(put('w/a', '1'), put('w/b', '1'), put('w/c', '1')));
        // Concurrent commits on disjoint keys: the order they are given revisions in is the backend's (etcd's is not the order they were sent in).
        const concurrent = [txn(del('w/a')), txn(put('w/d', '3')), txn(put('w/b', '4'), del('w/c'))];
        const revisions = await Promise.all(concurrent.map((t) => db.commit(t)));
        await watched.seen(Math.max(...revisions));
        const expected = [{ revision: r1, ops: [put('w/a', '1'), put('w/b', '1'), put('w/c', '1')] }, ...concurrent.map((t, i) => ({ revision: revisions[i]!, ops: t.ops }))];
        expect(watched.events).to.deep.equal(expected.sort((a, b) => a.revision - b.revision));
        expect([...revisions].sort((a, b) => a - b)).to.deep.equal([r1 + 1, r1 + 2, r1 + 3]);
      });

      it('sends nothing to a watcher after it unsubscribes; other watchers go on', async () => {
        const db = await open();
        const leaving = recorder(db);
        const staying = recorder(db);
        const first = await db.commit(txn(put('u/1', '1')));
        await leaving.seen(first);
        leaving.stop();
        const second = await db.commit(txn(put('u/2', '2')));
        const third = await db.commit(txn(put('u/3', '3')));
        await staying.seen(third);
        expect(staying.events.map((e) => e.revision)).to.deep.equal([first, second, third]);
        expect(leaving.events.map((e) => e.revision)).to.deep.equal([first]);
      });

      it('tells a watcher only about commits after it subscribed', async () => {
        const db = await open();
        await db.commit(txn(put('early', '1')));
        const watched = recorder(db);
        const later = await db.commit(txn(put('late', '1')));
        await watched.seen(later);
        expect(watched.events).to.deep.equal([{ revision: later, ops: [put('late', '1')] }]);
      });
    });

    describe('recovery', () => {
      it('keeps every acknowledged commit, deletes included, and the revision across a close and reopen', async () => {
        const db = await open();
        await Promise.all(Array.from({ length: 40 }, (_, i) => db.commit(txn(put(`r/${String(i).padStart(2, '0')}`, `v${i}`), put(`r/${String(i).padStart(2, '0')}/x`, 'x')))));
        for (let i = 0; i < 40; i += 3) await db.commit(txn(del(`r/${String(i).padStart(2, '0')}/x`)));
        const revision = db.revision();
        const state = await db.list('');
        const again = await reopen(db);
        expect(again.revision()).to.equal(revision);
        expect(await again.list('')).to.deep.equal(state);
        expect(await again.commit(txn(put('next', '1')))).to.equal(revision + 1);
        const third = await reopen(again);
        expect(third.revision()).to.equal(revision + 1);
        expect((await third.get('next'))?.modRevision).to.equal(revision + 1);
      });

      it('after kill -9 of a writer mid-stream: every acknowledged commit is there, every commit is all or nothing, revisions have no gap', async () => {
        const outcome = await runCrashWriter(target, context, 60);
        const db = await open();
        // A shared store (etcd) may still apply a commit the killed writer had already sent: let it land first.
        for (let quiet = false; !quiet; ) {
          const before = db.revision();
          await new Promise((r) => setTimeout(r, 500));
          quiet = db.revision() === before;
        }
        const revision = db.revision();
        expect(revision).to.be.at.least(outcome.lastAcked);
        const entries = await db.list('crash/');
        const byTxn = new Map<string, { keys: string[]; revisions: Set<number>; values: Set<string> }>();
        for (const entry of entries) {
          const id = entry.key.split('/')[1]!;
          const seen = byTxn.get(id) ?? { keys: [], revisions: new Set(), values: new Set() };
          seen.keys.push(entry.key);
          seen.revisions.add(entry.modRevision);
          seen.values.add(entry.value);
          byTxn.set(id, seen);
        }
        for (const [id, seen] of byTxn) {
          expect(seen.keys, `transaction ${id}: all of its keys or none`).to.have.length(CRASH_OPS_PER_TXN);
          expect(seen.revisions.size, `transaction ${id}: one revision`).to.equal(1);
          expect([...seen.values], `transaction ${id}: its own value`).to.deep.equal([crashValue(Number(id))]);
        }
        for (const [id, ackedRevision] of outcome.acked) expect(byTxn.get(id)?.revisions.has(ackedRevision), `acknowledged transaction ${id} at revision ${ackedRevision}`).to.equal(true);
        const revisions = [...byTxn.values()].map((t) => [...t.revisions][0]!).sort((a, b) => a - b);
        expect(revisions).to.deep.equal(Array.from({ length: revision - base }, (_, i) => base + 1 + i));
        expect(await db.commit(txn(put('after-crash', '1')))).to.equal(revision + 1);
      });
    });
  });
}

/** What the crash writer commits: transaction i puts this many keys, crash/<i>/<n>, each with crashValue(i). */
export const CRASH_OPS_PER_TXN = 4;
export const crashValue = (i: number): string => `${i}:`.padEnd(16 * 1024, String(i % 10));

/**
 * Runs backend-crash-writer.ts in a child process on the same storage, lets it
 * acknowledge at least `acks` commits while it keeps more in flight, and
 * kills it with SIGKILL. Returns the acknowledged commits (transaction id →
 * revision) and the highest acknowledged revision.
 *
 * This is a process crash, not a power cut: data the kernel accepted
 * survives it. It proves that commits in flight (queued, or being written
 * when the process died) come back whole or not at all, and that nothing
 * acknowledged is lost; torn writes at the end of a file are the embedded
 * engine's own tests (embedded-backend.test.ts).
 */
async function runCrashWriter<C>(target: ConformanceTarget<C>, context: C, acks: number): Promise<{ acked: Map<string, number>; lastAcked: number }> {
  const writer = fileURLToPath(new URL('./backend-crash-writer.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', writer, target.module.url, target.module.exportName, JSON.stringify(context)], { stdio: ['ignore', 'pipe', 'pipe'] });
  // 'close', not 'exit': every line the writer printed before it died is read.
  const closed = once(child, 'close');
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const acked = new Map<string, number>();
  const parse = () => {
    for (const line of stdout.split('\n')) {
      const m = /^ack (\d+) (\d+)$/.exec(line);
      if (m) acked.set(m[1]!, Number(m[2]));
    }
  };
  try {
    await until(() => {
      if (child.exitCode !== null) throw new Error(`the crash writer exited (${child.exitCode}) before it was killed:\n${stderr}`);
      parse();
      return acked.size >= acks;
    }, `${acks} acknowledged commits from the crash writer`, 30_000, 5);
    child.kill('SIGKILL');
    await closed;
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  parse();
  expect(child.signalCode).to.equal('SIGKILL');
  return { acked, lastAcked: Math.max(...acked.values()) };
}
