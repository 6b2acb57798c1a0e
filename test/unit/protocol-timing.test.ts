import { expect } from 'chai';
import { DEFAULT_HEARTBEAT_PERIOD_MS, MAX_HEARTBEAT_PERIOD_MS, MIN_HEARTBEAT_PERIOD_MS, heartbeatPeriodFrom } from '../../src/protocol/index.js';

describe('heartbeat period an agent takes from its store', () => {
  it('uses the period the store sent', () => {
    expect(heartbeatPeriodFrom(200)).to.equal(200);
    expect(heartbeatPeriodFrom(30_000)).to.equal(30_000);
  });

  it('uses the default when the store sent none (0: a store from before the field)', () => {
    expect(heartbeatPeriodFrom(0)).to.equal(DEFAULT_HEARTBEAT_PERIOD_MS);
    expect(heartbeatPeriodFrom(undefined)).to.equal(DEFAULT_HEARTBEAT_PERIOD_MS);
    expect(DEFAULT_HEARTBEAT_PERIOD_MS).to.equal(5_000);
  });

  it('clamps a period out of bounds instead of flooding the store or falling silent', () => {
    expect(heartbeatPeriodFrom(1)).to.equal(MIN_HEARTBEAT_PERIOD_MS);
    expect(heartbeatPeriodFrom(3_600_000)).to.equal(MAX_HEARTBEAT_PERIOD_MS);
    expect(heartbeatPeriodFrom(Number.NaN)).to.equal(DEFAULT_HEARTBEAT_PERIOD_MS);
  });
});
