import { expect } from 'chai';
import { SharedExclusiveGate } from '../../src/store/gate.js';
import { rejection } from '../helpers/assert.js';

/** Work that runs until the test finishes it, and logs when it starts and ends. */
interface Held {
  started: boolean;
  finish(): void;
  fail(err: Error): void;
  done: Promise<string>;
}

/** Lets every pending promise callback run (the gate hands over in microtasks). */
const settle = () => new Promise((r) => setImmediate(r));

describe('shared/exclusive gate', () => {
  let gate: SharedExclusiveGate;
  let log: string[];
  beforeEach(() => {
    gate = new SharedExclusiveGate();
    log = [];
  });

  const hold = (kind: 'shared' | 'exclusive', name: string): Held => {
    let finish!: () => void;
    let fail!: (err: Error) => void;
    const held = { started: false } as Held;
    held.done = gate[kind](async () => {
      held.started = true;
      log.push(`${name} start`);
      await new Promise<void>((resolve, reject) => ((finish = resolve), (fail = reject)));
      log.push(`${name} end`);
      return name;
    });
    held.finish = () => finish();
    held.fail = (err) => fail(err);
    return held;
  };

  it('runs shared holders at the same time, and returns what the work returns', async () => {
    const a = hold('shared', 'a');
    const b = hold('shared', 'b');
    await settle();
    expect([a.started, b.started]).to.deep.equal([true, true]);
    b.finish();
    a.finish();
    expect(await Promise.all([a.done, b.done])).to.deep.equal(['a', 'b']);
    expect(log).to.deep.equal(['a start', 'b start', 'b end', 'a end']);
  });

  it('starts an exclusive holder only once every shared holder has finished', async () => {
    const a = hold('shared', 'a');
    const b = hold('shared', 'b');
    const x = hold('exclusive', 'x');
    await settle();
    expect(x.started).to.equal(false);
    a.finish();
    await a.done;
    await settle();
    expect(x.started, 'one shared holder still holds').to.equal(false);
    b.finish();
    await b.done;
    await settle();
    expect(x.started).to.equal(true);
    x.finish();
    await x.done;
    expect(log).to.deep.equal(['a start', 'b start', 'a end', 'b end', 'x start', 'x end']);
  });

  it('makes shared work that arrives while an exclusive holder waits wait behind it: a stream of readers cannot starve it', async () => {
    const r0 = hold('shared', 'r0');
    await settle();
    const x = hold('exclusive', 'x');
    // Readers keep arriving while r0 still holds: letting them join r0 would keep the gate shared for ever.
    const later = [1, 2, 3, 4, 5].map((i) => hold('shared', `r${i}`));
    await settle();
    expect(later.map((r) => r.started)).to.deep.equal([false, false, false, false, false]);
    r0.finish();
    await r0.done;
    await settle();
    expect(x.started).to.equal(true);
    expect(later.map((r) => r.started)).to.deep.equal([false, false, false, false, false]);
    x.finish();
    await x.done;
    await settle();
    expect(later.map((r) => r.started)).to.deep.equal([true, true, true, true, true]);
    for (const r of later) r.finish();
    await Promise.all(later.map((r) => r.done));
    expect(log.slice(0, 5)).to.deep.equal(['r0 start', 'r0 end', 'x start', 'x end', 'r1 start']);
  });

  it('never runs two exclusive holders at once', async () => {
    const x = hold('exclusive', 'x');
    const y = hold('exclusive', 'y');
    await settle();
    expect([x.started, y.started]).to.deep.equal([true, false]);
    x.finish();
    await x.done;
    await settle();
    expect(y.started).to.equal(true);
    y.finish();
    await y.done;
    expect(log).to.deep.equal(['x start', 'x end', 'y start', 'y end']);
  });

  it('serves waiters in the order they came once an exclusive holder leaves: a reader queued before a second writer goes first', async () => {
    const x = hold('exclusive', 'x');
    await settle();
    const r = hold('shared', 'r');
    const y = hold('exclusive', 'y');
    await settle();
    x.finish();
    await x.done;
    await settle();
    expect([r.started, y.started]).to.deep.equal([true, false]);
    r.finish();
    await r.done;
    await settle();
    expect(y.started).to.equal(true);
    y.finish();
    await y.done;
    expect(log).to.deep.equal(['x start', 'x end', 'r start', 'r end', 'y start', 'y end']);
  });

  it('releases the gate when exclusive work fails, passing its error on', async () => {
    const x = hold('exclusive', 'x');
    const r = hold('shared', 'r');
    await settle();
    x.fail(new Error('rotation failed'));
    expect((await rejection(x.done)).message).to.equal('rotation failed');
    await settle();
    expect(r.started).to.equal(true);
    r.finish();
    expect(await r.done).to.equal('r');
    expect(await gate.exclusive(async () => 'after')).to.equal('after');
  });

  it('releases the gate when shared work fails, so a waiting exclusive holder runs', async () => {
    const a = hold('shared', 'a');
    const x = hold('exclusive', 'x');
    await settle();
    a.fail(new Error('seal failed'));
    expect((await rejection(a.done)).message).to.equal('seal failed');
    await settle();
    expect(x.started).to.equal(true);
    x.finish();
    await x.done;
    expect(await gate.shared(async () => 'after')).to.equal('after');
  });

  it('releases the gate when work throws before its first await', async () => {
    const thrown = gate.exclusive(() => {
      throw new Error('at once');
    });
    expect((await rejection(thrown)).message).to.equal('at once');
    const sharedThrown = gate.shared(() => {
      throw new Error('at once too');
    });
    expect((await rejection(sharedThrown)).message).to.equal('at once too');
    expect(await gate.exclusive(async () => 'free')).to.equal('free');
  });
});
