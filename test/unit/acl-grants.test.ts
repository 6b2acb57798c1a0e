import { expect } from 'chai';
import { parseGrantSpec, validateGrants, type Grant } from '../../src/acl/index.js';
import { HushError } from '../../src/errors/index.js';

/** Runs fn and returns the HushError it throws; fails the test if it throws nothing else. */
function hushError(fn: () => unknown): HushError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(HushError);
    return err as HushError;
  }
  expect.fail('expected a HushError');
}

describe('acl grants: parseGrantSpec', () => {
  const ok: [string, Grant][] = [
    ['db_pw', { source: 'db_pw', target: 'db_pw', uid: 0, gid: 0, mode: 0o444 }],
    ['db_pw,target=password', { source: 'db_pw', target: 'password', uid: 0, gid: 0, mode: 0o444 }],
    ['source=db_pw,target=pw,uid=103,gid=104,mode=0400', { source: 'db_pw', target: 'pw', uid: 103, gid: 104, mode: 0o400 }],
    ['src=db_pw', { source: 'db_pw', target: 'db_pw', uid: 0, gid: 0, mode: 0o444 }],
    ['db_pw,mode=400', { source: 'db_pw', target: 'db_pw', uid: 0, gid: 0, mode: 0o400 }],
    ['db_pw,mode=0o440', { source: 'db_pw', target: 'db_pw', uid: 0, gid: 0, mode: 0o440 }],
    ['db_pw,mode=0', { source: 'db_pw', target: 'db_pw', uid: 0, gid: 0, mode: 0 }],
    ['db_pw,mode=777', { source: 'db_pw', target: 'db_pw', uid: 0, gid: 0, mode: 0o777 }],
    ['db_pw, uid=1000 ,gid=1000', { source: 'db_pw', target: 'db_pw', uid: 1000, gid: 1000, mode: 0o444 }],
    ['db_pw,uid=4294967294', { source: 'db_pw', target: 'db_pw', uid: 4294967294, gid: 0, mode: 0o444 }],
    ['target=t,source=s', { source: 's', target: 't', uid: 0, gid: 0, mode: 0o444 }],
  ];
  for (const [spec, want] of ok) {
    it(`parses "${spec}"`, () => expect(parseGrantSpec(spec)).to.deep.equal(want));
  }

  const bad: [string, string, RegExp][] = [
    ['', 'bad_request', /empty --secret/],
    ['db_pw,target=../x', 'bad_request', /contains "\/"/],
    ['db_pw,target=a/b', 'bad_request', /contains "\/"/],
    ['db_pw,target=..', 'bad_request', /not a file name/],
    ['db_pw,target=.', 'bad_request', /not a file name/],
    ['db_pw,target=', 'bad_request', /target is empty/],
    ['db_pw,target=/etc/passwd', 'bad_request', /contains "\/"/],
    [`db_pw,target=${'x'.repeat(256)}`, 'bad_request', /256 bytes; the limit is 255/],
    [`db_pw,target=${'é'.repeat(128)}`, 'bad_request', /256 bytes/],
    ['db_pw,mode=0800', 'bad_request', /not octal/],
    ['db_pw,mode=rw', 'bad_request', /not octal/],
    ['db_pw,mode=4755', 'bad_request', /out of range/],
    ['db_pw,mode=1000', 'bad_request', /out of range/],
    ['db_pw,uid=-1', 'bad_request', /uid "-1" is not a number/],
    ['db_pw,uid=1e3', 'bad_request', /not a number/],
    ['db_pw,gid=0x10', 'bad_request', /gid "0x10" is not a number/],
    ['db_pw,uid=4294967295', 'bad_request', /out of range/],
    ['db_pw,owner=1', 'bad_request', /unknown option "owner"/],
    ['db_pw,mode=0400,mode=0444', 'bad_request', /mode is given twice/],
    ['db_pw,source=other', 'bad_request', /source is given twice/],
    ['target=x', 'bad_request', /no secret name/],
    ['db_pw,oops', 'bad_request', /not KEY=VALUE/],
    ['db_pw,,mode=0400', 'bad_request', /not KEY=VALUE/],
    ['-bad', 'invalid_name', /invalid secret name "-bad"/],
    ['bad name', 'invalid_name', /invalid secret name/],
  ];
  for (const [spec, code, message] of bad) {
    it(`rejects "${spec.slice(0, 40)}" (${code})`, () => {
      const err = hushError(() => parseGrantSpec(spec));
      expect(err.code).to.equal(code);
      expect(err.message).to.match(message);
    });
  }

  it('names the spec in the message so the user can find it among several --secret flags', () => {
    expect(hushError(() => parseGrantSpec('db_pw,target=../x')).message).to.include('--secret "db_pw,target=../x"');
  });
});

describe('acl grants: validateGrants', () => {
  it('fills in Docker defaults', () => {
    expect(validateGrants([{ source: 'a' }])).to.deep.equal([{ source: 'a', target: 'a', uid: 0, gid: 0, mode: 0o444 }]);
  });

  it('keeps numeric modes as given', () => {
    expect(validateGrants([{ source: 'a', mode: 0o400 }])[0]?.mode).to.equal(0o400);
    expect(validateGrants([{ source: 'a', mode: 0 }])[0]?.mode).to.equal(0);
  });

  it('accepts compose-style string uid/gid and octal-text mode', () => {
    expect(validateGrants([{ source: 'a', uid: '103', gid: '104', mode: '0440' }])[0]).to.deep.equal({
      source: 'a',
      target: 'a',
      uid: 103,
      gid: 104,
      mode: 0o440,
    });
  });

  it('allows one secret at two targets', () => {
    const out = validateGrants([{ source: 'a' }, { source: 'a', target: 'a2' }]);
    expect(out.map((g) => g.target)).to.deep.equal(['a', 'a2']);
  });

  it('accepts an empty list', () => expect(validateGrants([])).to.deep.equal([]));

  const bad: [string, unknown[], string, RegExp][] = [
    ['a traversal target', [{ source: 'a', target: '../x' }], 'bad_request', /grant #1 \(source "a"\): target "..\/x" contains "\/"/],
    ['a nested target', [{ source: 'a', target: 'a/b' }], 'bad_request', /contains "\/"/],
    ['"..".', [{ source: 'a', target: '..' }], 'bad_request', /not a file name/],
    ['"."', [{ source: 'a', target: '.' }], 'bad_request', /not a file name/],
    ['an empty target', [{ source: 'a', target: '' }], 'bad_request', /target is empty/],
    ['a NUL in the target', [{ source: 'a', target: 'x\0y' }], 'bad_request', /NUL/],
    ['a non-string target', [{ source: 'a', target: 5 }], 'bad_request', /target must be a string/],
    [
      'duplicate targets',
      [{ source: 'a', target: 'x' }, { source: 'b', target: 'x' }],
      'bad_request',
      /grant #2 \(source "b"\): target "x" is already used by grant #1 \(source "a"\)/,
    ],
    ['a default target clashing with an explicit one', [{ source: 'a' }, { source: 'b', target: 'a' }], 'bad_request', /already used/],
    ['a missing source', [{ target: 'x' }], 'bad_request', /grant #1: source \(the secret name\) is required/],
    ['an invalid source', [{ source: '../a' }], 'invalid_name', /grant #1 \(source "..\/a"\): invalid secret name/],
    ['an unknown field', [{ source: 'a', file: 'x' }], 'unknown_field', /unknown field "file"/],
    ['a non-object grant', ['a'], 'bad_request', /grant #1 must be an object/],
    ['a null grant', [null], 'bad_request', /must be an object/],
    ['a negative uid', [{ source: 'a', uid: -1 }], 'bad_request', /uid -1 is out of range/],
    ['a fractional gid', [{ source: 'a', gid: 1.5 }], 'bad_request', /gid 1.5 is out of range/],
    ['uid 2^32-1', [{ source: 'a', uid: 2 ** 32 - 1 }], 'bad_request', /out of range/],
    ['a boolean uid', [{ source: 'a', uid: true }], 'bad_request', /uid must be an integer/],
    ['mode 0o1000', [{ source: 'a', mode: 0o1000 }], 'bad_request', /mode 512 is out of range/],
    ['a negative mode', [{ source: 'a', mode: -1 }], 'bad_request', /out of range/],
    ['a fractional mode', [{ source: 'a', mode: 1.5 }], 'bad_request', /out of range/],
  ];
  for (const [what, grants, code, message] of bad) {
    it(`rejects ${what}`, () => {
      const err = hushError(() => validateGrants(grants));
      expect(err.code).to.equal(code);
      expect(err.message).to.match(message);
    });
  }

  it('accepts uid/gid at the top of the range', () => {
    expect(validateGrants([{ source: 'a', uid: 2 ** 32 - 2, gid: 2 ** 32 - 2 }])[0]?.uid).to.equal(4294967294);
  });

  it('rejects a grants value that is not a list', () => {
    expect(hushError(() => validateGrants('a' as unknown as unknown[])).code).to.equal('bad_request');
  });
});
