import { expect } from 'chai';
import { HushError } from '../../src/errors/index.js';
import { certFingerprint, createClusterCa, formatJoinToken, newJoinSecret, parseJoinToken } from '../../src/pki/index.js';

const MALFORMED = 'malformed join token: expected HUSH-1-<ca fingerprint>-<secret>';
const FP = 'ab'.repeat(32);
const SECRET = 'abcdefghijklmnopqrstuvwxyz234567';

function expectMalformed(token: string): void {
  let thrown: unknown;
  try {
    parseJoinToken(token);
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `expected ${JSON.stringify(token)} to be refused`).to.be.instanceOf(HushError);
  expect((thrown as HushError).code).to.equal('bad_request');
  expect((thrown as HushError).message).to.equal(MALFORMED);
}

describe('pki join tokens', () => {
  it('makes 32-character base32 secrets that differ each time', () => {
    const secrets = Array.from({ length: 50 }, newJoinSecret);
    for (const secret of secrets) expect(secret).to.match(/^[a-z2-7]{32}$/);
    expect(new Set(secrets).size).to.equal(50);
    // Every base32 character turns up somewhere in 1600 random ones: no character is unreachable.
    expect(new Set(secrets.join('')).size).to.equal(32);
  });

  it('round-trips the fingerprint of a real CA and a new secret', () => {
    const fingerprint = certFingerprint(createClusterCa().certPem);
    const secret = newJoinSecret();
    const token = formatJoinToken(fingerprint, secret);
    expect(token).to.equal(`HUSH-1-${fingerprint}-${secret}`);
    expect(parseJoinToken(token)).to.deep.equal({ caFingerprint: fingerprint, secret });
  });

  it('normalizes case and ignores surrounding whitespace', () => {
    expect(parseJoinToken(`  HUSH-1-${FP.toUpperCase()}-${SECRET.toUpperCase()}\n`)).to.deep.equal({ caFingerprint: FP, secret: SECRET });
    expect(formatJoinToken(FP.toUpperCase(), SECRET)).to.equal(`HUSH-1-${FP}-${SECRET}`);
  });

  it('refuses malformed tokens with one clear message', () => {
    expect(parseJoinToken(`HUSH-1-${FP}-${SECRET}`)).to.deep.equal({ caFingerprint: FP, secret: SECRET });
    const bad = [
      '',
      `SWMTKN-1-${FP}-${SECRET}`, // wrong prefix
      `HUSH-2-${FP}-${SECRET}`, // unknown version
      `hush-1-${FP}-${SECRET}`,
      `HUSH-1-${FP.slice(0, 63)}g-${SECRET}`, // bad hex
      `HUSH-1-${FP.slice(0, 63)}-${SECRET}`, // short fingerprint
      `HUSH-1-${FP}a-${SECRET}`, // long fingerprint
      `HUSH-1-${FP}`, // missing secret
      `HUSH-1-${FP}-`,
      `HUSH-1-${FP.slice(0, 32)}-${FP.slice(32)}-${SECRET}`, // extra dash inside the fingerprint
      `HUSH-1-${FP.slice(0, 31)}-${FP.slice(31)}-${SECRET}`,
      `HUSH-1-${FP}-${SECRET}-extra`,
      `HUSH-1-${FP}-${SECRET.slice(1)}`, // short secret
      `HUSH-1-${FP}-${SECRET.slice(1)}0`, // 0 is not base32
      `HUSH-1-${FP}-${SECRET} x`,
    ];
    for (const token of bad) expectMalformed(token);
  });

  it('refuses to format a token it could not parse', () => {
    expect(() => formatJoinToken('not-a-fingerprint', SECRET)).to.throw(HushError, MALFORMED);
    expect(() => formatJoinToken(FP, 'short')).to.throw(HushError, MALFORMED);
  });
});
