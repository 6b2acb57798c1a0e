import { expect } from 'chai';
import { LocalLeases } from '../../src/store/index.js';

describe('leases: LocalLeases (one process holds every lease)', () => {
  it('grants a free lease at once, with no fence conditions', async () => {
    const lease = await new LocalLeases().acquire('rotation-scheduler');
    expect(lease.name).to.equal('rotation-scheduler');
    expect(lease.lost.aborted).to.equal(false);
    expect(lease.fence()).to.deep.equal([]);
    await lease.release();
    expect(lease.lost.aborted, 'a released lease counts as lost to its holder').to.equal(true);
  });

  it('keeps one holder per name: a second acquire waits for the release', async () => {
    const leases = new LocalLeases();
    const first = await leases.acquire('duty');
    let second = false;
    const waiting = leases.acquire('duty').then((l) => ((second = true), l));
    const other = await leases.acquire('another duty');
    await new Promise((r) => setTimeout(r, 20));
    expect(second, 'granted while the first holder still holds it').to.equal(false);
    await first.release();
    const lease = await waiting;
    expect(second).to.equal(true);
    await lease.release();
    await other.release();
  });

  it('gives up waiting when the signal aborts', async () => {
    const leases = new LocalLeases();
    const held = await leases.acquire('duty');
    const controller = new AbortController();
    const waiting = leases.acquire('duty', controller.signal);
    controller.abort();
    await held.release();
    let error: unknown;
    await waiting.catch((err: unknown) => (error = err));
    expect((error as Error | undefined)?.name).to.equal('AbortError');
  });
});
