import { expect } from 'chai';
import { Envelope, loadSodium, type Sodium } from '../../src/store/index.js';

describe('envelope encryption', () => {
  let sodium: Sodium;
  let envelope: Envelope;
  let kek: Uint8Array;
  const binding = { id: 'abc123', name: 'db_password', version: 1 };
  const plaintext = new TextEncoder().encode('correct horse battery staple');

  before(async () => {
    sodium = await loadSodium();
    envelope = new Envelope(sodium);
    kek = sodium.crypto_aead_xchacha20poly1305_ietf_keygen();
  });

  it('round-trips a value and never stores it in clear', () => {
    const sealed = envelope.seal(plaintext, binding, kek, 1);
    expect(JSON.stringify(sealed)).not.to.contain('horse');
    expect(Buffer.from(envelope.open(sealed, binding, kek)).toString()).to.equal('correct horse battery staple');
  });

  it('uses a fresh data key and nonce per seal', () => {
    const a = envelope.seal(plaintext, binding, kek, 1);
    const b = envelope.seal(plaintext, binding, kek, 1);
    expect(a.ciphertext).not.to.equal(b.ciphertext);
    expect(a.wrappedKey).not.to.equal(b.wrappedKey);
  });

  for (const [what, other] of [
    ['another id', { ...binding, id: 'other' }],
    ['another name', { ...binding, name: 'api_token' }],
    ['another version', { ...binding, version: 2 }],
  ] as const) {
    it(`refuses to open a value bound to ${what}`, () => {
      const sealed = envelope.seal(plaintext, binding, kek, 1);
      expect(() => envelope.open(sealed, other, kek)).to.throw();
    });
  }

  it('refuses a ciphertext with one flipped byte', () => {
    const sealed = envelope.seal(plaintext, binding, kek, 1);
    const bytes = Buffer.from(sealed.ciphertext, 'base64');
    bytes[5] ^= 0x01;
    expect(() => envelope.open({ ...sealed, ciphertext: bytes.toString('base64') }, binding, kek)).to.throw();
  });

  it('refuses records whose wrapped keys were swapped', () => {
    const a = envelope.seal(plaintext, binding, kek, 1);
    const b = envelope.seal(new TextEncoder().encode('other'), { ...binding, id: 'b' }, kek, 1);
    expect(() => envelope.open({ ...a, wrappedKey: b.wrappedKey }, binding, kek)).to.throw();
    expect(() => envelope.open({ ...a, ciphertext: b.ciphertext, nonce: b.nonce }, binding, kek)).to.throw();
  });

  it('refuses to open under another KEK, and rewrap moves a value to a new KEK', () => {
    const sealed = envelope.seal(plaintext, binding, kek, 1);
    const newKek = sodium.crypto_aead_xchacha20poly1305_ietf_keygen();
    expect(() => envelope.open(sealed, binding, newKek)).to.throw();
    const rewrapped = envelope.rewrap(sealed, binding, kek, newKek, 2);
    expect(rewrapped.term).to.equal(2);
    expect(rewrapped.ciphertext).to.equal(sealed.ciphertext);
    expect(Buffer.from(envelope.open(rewrapped, binding, newKek)).toString()).to.equal('correct horse battery staple');
    expect(() => envelope.open(rewrapped, binding, kek)).to.throw();
  });
});
