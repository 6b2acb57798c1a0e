import { expect } from 'chai';
import { AddressLockout } from '../../src/http/address-lockout.js';

describe('address lockout (failed authentications per address)', () => {
  let now = 0;
  const throttle = () => new AddressLockout({ maxFailures: 3, windowMs: 60_000, lockMs: 10_000 }, () => now);
  beforeEach(() => (now = 1_000_000));

  it('locks an address out at the third refusal within the window, for the lockout only; other addresses are not touched', () => {
    const t = throttle();
    expect(t.failed('10.0.0.1')).to.equal(undefined);
    expect(t.failed('10.0.0.1')).to.equal(undefined);
    expect(t.check('10.0.0.1')).to.equal(undefined);
    expect(t.failed('10.0.0.1')).to.equal(3);
    expect(t.check('10.0.0.1')).to.deep.equal({ address: '10.0.0.1', retryAfterMs: 10_000 });
    expect(t.check('10.0.0.2')).to.equal(undefined);
    now += 9_999;
    expect(t.check('10.0.0.1')?.retryAfterMs).to.equal(1);
    now += 1;
    expect(t.check('10.0.0.1')).to.equal(undefined);
    // A fresh count after the lockout.
    expect(t.failed('10.0.0.1')).to.equal(undefined);
  });

  it('does not count failures while locked out: the lockout ends when it was due', () => {
    const t = throttle();
    for (let i = 0; i < 3; i++) t.failed('10.0.0.1');
    now += 5_000;
    for (let i = 0; i < 10; i++) expect(t.failed('10.0.0.1')).to.equal(undefined);
    now += 5_000;
    expect(t.check('10.0.0.1')).to.equal(undefined);
  });

  it('forgets refusals older than the window', () => {
    const t = throttle();
    t.failed('10.0.0.1');
    t.failed('10.0.0.1');
    now += 60_001;
    expect(t.failed('10.0.0.1')).to.equal(undefined);
    expect(t.check('10.0.0.1')).to.equal(undefined);
  });

  it('tracks at most 10,000 addresses, forgetting the one idle longest', () => {
    const t = throttle();
    t.failed('victim');
    t.failed('victim');
    for (let i = 0; i < 10_000; i++) t.failed(`10.1.${i >> 8}.${i & 255}`);
    // The victim's two refusals were forgotten: two more do not lock it out.
    expect(t.failed('victim')).to.equal(undefined);
    expect(t.failed('victim')).to.equal(undefined);
    expect(t.failed('victim')).to.equal(3);
  });
});
