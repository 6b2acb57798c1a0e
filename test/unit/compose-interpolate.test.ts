import { expect } from 'chai';
import { parseDotEnv, DotEnvError } from '../../src/compose/dotenv.js';
import { interpolate, InterpolationError } from '../../src/compose/interpolate.js';

// Unit tests of two internal modules of src/compose (not its door): the
// template grammar and the .env format are easiest to pin down on their own.

const ENV: Record<string, string> = { SET: 'value', EMPTY: '', OTHER: 'other', _U9: 'under' };
const lookup = (name: string): string | undefined => (Object.hasOwn(ENV, name) ? ENV[name] : undefined);

function run(text: string): { out: string; unset: string[] } {
  const unset: string[] = [];
  const out = interpolate(text, lookup, (n) => unset.push(n));
  return { out, unset };
}

describe('compose interpolation', () => {
  const cases: [string, string, string[]][] = [
    ['no variables', 'no variables', []],
    ['$SET', 'value', []],
    ['${SET}', 'value', []],
    ['a-$SET-b', 'a-value-b', []],
    ['$SET$OTHER', 'valueother', []],
    ['${SET}x', 'valuex', []],
    ['$_U9.', 'under.', []],
    ['$UNSET', '', ['UNSET']],
    ['${UNSET}', '', ['UNSET']],
    // :- and - : empty counts as unset only with the colon
    ['${UNSET:-d}', 'd', []],
    ['${EMPTY:-d}', 'd', []],
    ['${SET:-d}', 'value', []],
    ['${UNSET-d}', 'd', []],
    ['${EMPTY-d}', '', []],
    ['${SET-d}', 'value', []],
    // :+ and +
    ['${SET:+alt}', 'alt', []],
    ['${EMPTY:+alt}', '', []],
    ['${UNSET:+alt}', '', []],
    ['${SET+alt}', 'alt', []],
    ['${EMPTY+alt}', 'alt', []],
    ['${UNSET+alt}', '', []],
    // :? and ? pass when set
    ['${SET:?must be set}', 'value', []],
    ['${EMPTY?must be set}', '', []],
    // $$ is a literal dollar and stops interpolation
    ['$$', '$', []],
    ['$$SET', '$SET', []],
    ['$${SET}', '${SET}', []],
    ['price: $$5', 'price: $5', []],
    // a $ not followed by a name or { stays as written
    ['a $ b', 'a $ b', []],
    ['cost $5', 'cost $5', []],
    ['trailing $', 'trailing $', []],
    // nesting, with the default expanded only when used
    ['${UNSET:-${OTHER}}', 'other', []],
    ['${UNSET:-${ALSO_UNSET:-deep}}', 'deep', []],
    ['${SET:-${NEVER:?not evaluated}}', 'value', []],
    ['${UNSET:-a}${SET}', 'avalue', []],
    ['${UNSET:-x}}', 'x}', []],
    ['${UNSET:-$$}', '$', []],
    ['${UNSET:-with spaces and: colons}', 'with spaces and: colons', []],
  ];
  for (const [text, want, unset] of cases) {
    it(`"${text}" → "${want}"`, () => {
      expect(run(text)).to.deep.equal({ out: want, unset });
    });
  }

  const failures: [string, string][] = [
    ['${UNSET:?TOKEN_NAME must be set}', 'required variable UNSET is missing a value: TOKEN_NAME must be set'],
    ['${EMPTY:?is empty}', 'required variable EMPTY is missing a value: is empty'],
    ['${UNSET?gone}', 'required variable UNSET is missing a value: gone'],
    ['${UNSET:?}', 'required variable UNSET is missing a value'],
    ['${UNSET:?needs $SET}', 'required variable UNSET is missing a value: needs value'],
    ['${SET', 'invalid interpolation format in "${SET": "${" without its "}"; write $$ for a literal $'],
    ['${}', 'invalid interpolation format in "${}": "${}" is not one of compose\'s forms; write $$ for a literal $'],
    ['${9X}', 'invalid interpolation format in "${9X}": "${9X}" is not one of compose\'s forms; write $$ for a literal $'],
    ['${SET/a/b}', 'invalid interpolation format in "${SET/a/b}": "${SET/a/b}" is not one of compose\'s forms; write $$ for a literal $'],
    ['${A B}', 'invalid interpolation format in "${A B}": "${A B}" is not one of compose\'s forms; write $$ for a literal $'],
  ];
  for (const [text, message] of failures) {
    it(`"${text}" fails: ${message}`, () => {
      expect(() => run(text)).to.throw(InterpolationError, message);
      try {
        run(text);
      } catch (err) {
        expect((err as Error).message).to.equal(message);
      }
    });
  }
});

describe('compose .env files', () => {
  it('reads the forms compose reads', () => {
    const text = [
      '# a comment',
      '',
      'PLAIN=hello',
      'SPACED = padded value   ',
      'export EXPORTED=yes',
      'INLINE=abc # trailing comment',
      'HASH=a#b',
      "SINGLE='literal $PLAIN \\n'",
      'DOUBLE="line1\\nline2 \\"q\\" $PLAIN \\$PLAIN"',
      'EXPANDED=${PLAIN}-${FROM_PROCESS}',
      'DEFAULTED=${NOPE:-fallback}',
      'EMPTY=',
      'MULTI="first',
      'second"',
      'AFTER=ok',
      'FROM_PROCESS',
      'NOT_IN_PROCESS',
      'CRLF=x\r',
    ].join('\n');
    expect(parseDotEnv(text, { FROM_PROCESS: 'proc' })).to.deep.equal({
      PLAIN: 'hello',
      SPACED: 'padded value',
      EXPORTED: 'yes',
      INLINE: 'abc',
      HASH: 'a#b',
      SINGLE: 'literal $PLAIN \\n',
      DOUBLE: 'line1\nline2 "q" hello $PLAIN',
      EXPANDED: 'hello-proc',
      DEFAULTED: 'fallback',
      EMPTY: '',
      MULTI: 'first\nsecond',
      AFTER: 'ok',
      FROM_PROCESS: 'proc',
      CRLF: 'x',
    });
  });

  const bad: [string, number, string][] = [
    ['OK=1\nnot a line\n', 2, '"not a line" is not KEY=VALUE'],
    ['1BAD=x', 1, '"1BAD" is not a variable name'],
    ['A=1\nB="open\nC=2\n', 2, 'B: the double quote is not closed'],
    ["A='x' y", 1, 'A: unexpected "y" after the closing quote'],
    ['A=1\n\nB=${X:?X is required}', 3, 'required variable X is missing a value: X is required'],
  ];
  for (const [text, line, message] of bad) {
    it(`refuses ${JSON.stringify(text)} at line ${line}`, () => {
      try {
        parseDotEnv(text, {});
      } catch (err) {
        expect(err).to.be.instanceOf(DotEnvError);
        expect((err as DotEnvError).line).to.equal(line);
        expect((err as DotEnvError).message).to.equal(message);
        return;
      }
      expect.fail('expected a DotEnvError');
    });
  }
});
