import { expect } from 'chai';
import { decodeCommit, encodeCommit } from '../../src/store/commit-codec.js';

describe('WAL commit payload codec', () => {
  it('round-trips puts and deletes, with non-ASCII keys and values and JSON that would need escaping', () => {
    const ops = [
      { type: 'put' as const, key: 'secrets/db', value: '{"a":"b\\"c","ü":"✓"}' },
      { type: 'delete' as const, key: 'secret-ids/ßx' },
      { type: 'put' as const, key: 'k', value: '' },
    ];
    expect(decodeCommit(encodeCommit(2 ** 40 + 7, ops))).to.deep.equal({ revision: 2 ** 40 + 7, ops });
  });

  it('refuses trailing bytes and unknown operation types', () => {
    const payload = encodeCommit(1, [{ type: 'delete', key: 'x' }]);
    expect(() => decodeCommit(Buffer.concat([payload, Buffer.from([0])]))).to.throw(/trailing/);
    const bad = Buffer.from(payload);
    bad[12] = 9;
    expect(() => decodeCommit(bad)).to.throw(/unknown operation type 9/);
  });
});
