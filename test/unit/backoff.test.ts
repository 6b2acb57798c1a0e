/**
 * The agent's reconnect backoff: exponential bound, capped, full jitter (a
 * uniform wait between 0 and the bound). Without the jitter every agent that
 * lost the store at the same moment would retry at the same moments, and a
 * restarted store would meet them all at once (bench/reconnect.ts measures
 * the spread this gives 100 agents).
 */
import { expect } from 'chai';
import { Backoff } from '../../src/agent/backoff.js';

/** A small seeded generator (mulberry32), so the deterministic cases replay exactly. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe('agent reconnect backoff', () => {
  it('the bound doubles from the base up to the cap; reset starts over', () => {
    // random() just below 1 gives the bound itself (minus the floor's rounding).
    const b = new Backoff({ baseMs: 200, capMs: 10_000, random: () => 0.999999 });
    expect(Array.from({ length: 8 }, () => b.next())).to.deep.equal([199, 399, 799, 1599, 3199, 6399, 9999, 9999]);
    expect(b.attempts).to.equal(8);
    b.reset();
    expect(b.next()).to.equal(199);
    expect(new Backoff({ random: () => 0 }).next()).to.equal(0);
  });

  it('many agents failing together spread their retries over the whole window (full jitter), at every attempt', () => {
    const agents = 10_000;
    const backoffs = Array.from({ length: agents }, () => new Backoff({ baseMs: 200, capMs: 10_000 }));
    for (let attempt = 0; attempt < 7; attempt++) {
      const bound = Math.min(10_000, 200 * 2 ** attempt);
      const delays = backoffs.map((b) => b.next());
      expect(Math.min(...delays)).to.be.at.least(0);
      expect(Math.max(...delays)).to.be.below(bound);
      // Ten equal slices of [0, bound): uniform means ~1,000 each (binomial sd ~30); a herd would fill one.
      const slices = new Array<number>(10).fill(0);
      for (const d of delays) slices[Math.floor((d / bound) * 10)]!++;
      for (const n of slices) expect(n, `attempt ${attempt + 1}: slices ${slices.join(',')}`).to.be.within(700, 1300);
    }
  });

  it('two agents with different random streams do not retry in step', () => {
    const a = new Backoff({ random: seeded(1) });
    const b = new Backoff({ random: seeded(2) });
    const pairs = Array.from({ length: 6 }, () => [a.next(), b.next()]);
    expect(pairs.filter(([x, y]) => x === y)).to.deep.equal([]);
  });
});
