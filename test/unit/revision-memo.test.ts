import { expect } from 'chai';
import { RevisionMemo } from '../../src/server/revision-memo.js';

describe('server: RevisionMemo (reads shared per store revision)', () => {
  it('reads a key once per revision, shares the read, and reads again at a new revision or after clear()', async () => {
    const memo = new RevisionMemo<string>();
    let reads = 0;
    const read = async () => `read ${++reads}`;
    const [a, b] = await Promise.all([memo.get(1, 'k', read), memo.get(1, 'k', read)]);
    expect([a, b, reads]).to.deep.equal(['read 1', 'read 1', 1]);
    expect(await memo.get(1, 'other', read)).to.equal('read 2');
    expect(await memo.get(2, 'k', read)).to.equal('read 3');
    memo.clear();
    expect(await memo.get(2, 'k', read)).to.equal('read 4');
  });

  it('does not keep a failed read: the next ask at the same revision reads again', async () => {
    const memo = new RevisionMemo<string>();
    let fail = true;
    const read = async () => {
      if (fail) throw new Error('storage unavailable');
      return 'value';
    };
    await memo.get(1, 'k', read).then(
      () => expect.fail('the failed read resolved'),
      (err: Error) => expect(err.message).to.equal('storage unavailable'),
    );
    fail = false;
    expect(await memo.get(1, 'k', read)).to.equal('value');
  });
});
