import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { deriveLogAuth, loadSodium } from '../../src/store/index.js';

describe('log authentication keys', () => {
  it('tags deterministically under one root key, differently under another, and never like the unkeyed SHA-256 chain', async () => {
    const sodium = await loadSodium();
    const a = deriveLogAuth(sodium, Buffer.alloc(32, 1));
    const again = deriveLogAuth(sodium, Buffer.alloc(32, 1));
    const b = deriveLogAuth(sodium, Buffer.alloc(32, 2));
    const previous = Buffer.alloc(32, 9);
    const payload = Buffer.from('payload');
    const tag = a.chain(previous, payload);
    expect(tag).to.have.length(32);
    expect(again.chain(previous, payload).equals(tag)).to.equal(true);
    expect(b.chain(previous, payload).equals(tag)).to.equal(false);
    expect(a.chain(Buffer.alloc(32, 8), payload).equals(tag), 'bound to the previous tag').to.equal(false);
    expect(tag.equals(createHash('sha256').update(previous).update(payload).digest())).to.equal(false);
  });

  it('keeps record and snapshot tags apart (two subkeys): one never passes for the other', async () => {
    const auth = deriveLogAuth(await loadSodium(), Buffer.alloc(32, 1));
    const body = Buffer.concat([Buffer.alloc(32, 9), Buffer.from('payload')]);
    expect(auth.snapshot(body).equals(auth.chain(Buffer.alloc(32, 9), Buffer.from('payload')))).to.equal(false);
  });
});
