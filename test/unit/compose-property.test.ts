import { expect } from 'chai';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ComposeError, loadComposeProject, type ComposeReader, type LoadResult } from '../../src/compose/index.js';
import { interpolate, InterpolationError } from '../../src/compose/interpolate.js';
const MAX_DEPTH = 64, MAX_LIST_ITEMS = 1000, MAX_VALUES = 200_000;
import { check, runs } from '../helpers/property.js';

/**
 * Property-based bad input for the compose loader (fast-check): whatever the
 * file holds, the loader returns a plan or throws one ComposeError (a single
 * line naming the file) — never another error, a hang or an exhausted heap.
 * Files come from an in-memory reader, so each case is a pure call.
 * HUSH_PROPERTY_SCALE multiplies the runs; HUSH_FUZZ_SEED replays.
 */

const encoder = new TextEncoder();

function readerOf(files: Record<string, string | Uint8Array>): ComposeReader {
  return {
    read(path: string): Uint8Array {
      const name = path.slice(path.lastIndexOf('/') + 1);
      const content = Object.hasOwn(files, name) ? files[name] : undefined;
      if (content === undefined) throw Object.assign(new Error(`${path}: no such file`), { code: 'ENOENT' });
      return typeof content === 'string' ? encoder.encode(content) : content;
    },
  };
}

type Outcome = { ok: LoadResult } | { refused: ComposeError };

/** Loads compose.yaml (plus the given side files); anything but a result or a ComposeError fails the property. */
function load(text: string | Uint8Array, env: Record<string, string> = {}, side: Record<string, string> = {}): Outcome {
  try {
    return { ok: loadComposeProject({ files: ['compose.yaml'], cwd: '/p/app', env, reader: readerOf({ ...side, 'compose.yaml': text }) }) };
  } catch (err) {
    if (!(err instanceof ComposeError)) throw new Error(`not a ComposeError: ${String(err)}`, { cause: err });
    // One line, located in the file: what the CLI prints after "error: ".
    expect(err.message).to.match(/^compose\.yaml(:\d+)?: /);
    expect(err.message).to.not.include('\n');
    return { refused: err };
  }
}

const refusal = (o: Outcome): string => ('refused' in o ? o.refused.reason : '(loaded)');

// Pieces that matter to YAML and compose, so random text hits their paths often.
const YAML_PIECES = [
  'services:', 'secrets:', '\n', '  ', '    ', '- ', ': ', 'api', 'db_pw', 'file: ./pw', 'environment: PW', 'mode: 0400', 'uid: "1000"',
  'source: db_pw', 'target: x', 'external: true', 'name: n', '&a ', '*a', '<<: ', '!reset ', '!override ', '!!binary ', '!!str ', '[', ']',
  '{', '}', ',', '"', "'", '#', '|', '>', '? ', '---', '...', '%YAML 1.2', '${A}', '${A:-d}', '$$', '${', '\t', '\u0000', '\ufeff', 'é', '😀',
];
const yamlishText = fc.array(fc.constantFrom(...YAML_PIECES), { maxLength: 60 }).map((p) => p.join(''));

// Compose-shaped values: the real keys with random values, so the schema and plan stages see most shapes.
const scalar = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer({ min: -2, max: 70000 }),
  fc.constantFrom(true, false, null, '0400', '0999', '0o440', 'x'.repeat(300), '../etc/passwd', '/run/secrets/a', '${A:-d}', '$$x', '__proto__'),
);
const SECRET_KEYS = ['file', 'environment', 'external', 'name', 'labels', 'driver', 'content', 'template_driver', 'x-junk'];
const GRANT_KEYS = ['source', 'target', 'uid', 'gid', 'mode', 'x-junk', 'bogus'];
const SERVICE_KEYS = ['image', 'secrets', 'deploy', 'extends', 'environment', 'labels', 'ports', 'x-junk', 'command'];
const NAMES = ['api', 'db', 'db_pw', 'a.b', '', '__proto__', 'constructor', 'x'.repeat(70), 'Ünï'];

function keyed(keys: string[], value: fc.Arbitrary<unknown>): fc.Arbitrary<Record<string, unknown>> {
  return fc.dictionary(fc.constantFrom(...keys), value, { maxKeys: 5 });
}
const anyValue = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, scalar, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(fc.constantFrom(...NAMES, ...GRANT_KEYS), tie('v'), { maxKeys: 4 })),
})).v;
const grant = fc.oneof(fc.constantFrom(...NAMES), keyed(GRANT_KEYS, fc.oneof(scalar, anyValue)));
const service = keyed(SERVICE_KEYS, fc.oneof(fc.array(grant, { maxLength: 4 }), anyValue, fc.record({ service: fc.constantFrom(...NAMES) }), fc.record({ placement: fc.record({ constraints: fc.array(fc.constantFrom('node.role==manager', 'node.labels.a==b', 'bogus', ''), { maxLength: 3 }) }) })));
const secret = keyed(SECRET_KEYS, fc.oneof(scalar, anyValue));
const composeShaped = fc.record(
  {
    name: scalar,
    version: scalar,
    services: fc.oneof(fc.dictionary(fc.constantFrom(...NAMES), service, { maxKeys: 4 }), anyValue),
    secrets: fc.oneof(fc.dictionary(fc.constantFrom(...NAMES), secret, { maxKeys: 4 }), anyValue),
    'x-extra': anyValue,
  },
  { requiredKeys: [] },
);

describe('compose loader: property-based bad input (fast-check)', function () {
  this.timeout(120_000);
  const env = { A: 'a', PW: 'from-env' };
  const side = { pw: 's3cret\n' };

  it('random YAML-ish text: a plan or one located ComposeError', async () => {
    await check(fc.property(yamlishText, (text) => void load(text, env, side)), runs(250));
  });

  it('random bytes (not UTF-8, NULs, BOMs): a plan or one located ComposeError', async () => {
    await check(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => void load(bytes, env, side)), runs(200));
  });

  it('compose-shaped documents with random values (stringified, so repeated parts become anchors): a plan or a ComposeError, the same both times', async () => {
    await check(
      fc.property(composeShaped, (doc) => {
        const text = stringify(doc, { aliasDuplicateObjects: true });
        const first = load(text, env, side);
        const second = load(text, env, side);
        expect(refusal(second)).to.equal(refusal(first));
        if ('ok' in first) {
          for (const s of first.ok.plan.secrets) expect(s.name).to.be.a('string').and.not.equal('');
          for (const svc of first.ok.plan.services) for (const g of svc.grants) expect(g.mode).to.be.within(0, 0o777);
        }
      }),
      runs(150),
    );
  });

  it('anchors, aliases and merge keys (<<: *a, <<: [*a, *b], on maps, lists and scalars): a plan or a ComposeError', async () => {
    // Anchor K may use anchors 0..K-1: as a value, merged into a map, or in a list.
    const use = (k: number) =>
      k === 0 ? fc.constant('1') : fc.integer({ min: 0, max: k - 1 }).chain((j) => fc.constantFrom(`*a${j}`, `{<<: *a${j}, k${k}: 1}`, `[*a${j}, *a${j}]`, `{<<: [*a${j}, *a0], k${k}: 2}`));
    const doc = fc.integer({ min: 1, max: 8 }).chain((n) =>
      fc.tuple(
        fc.tuple(...Array.from({ length: n }, (_, k) => fc.oneof(use(k), fc.constantFrom(`{mode: 0400, k${k}: x}`, `[a, b]`, `0440`, `{source: db_pw}`)))),
        fc.constantFrom('secrets', 'services.api', 'services.api.secrets', 'grant', 'services.api.deploy'),
        fc.integer({ min: 0, max: n - 1 }),
      ),
    );
    await check(
      fc.property(doc, ([anchors, where, j]) => {
        const head = anchors.map((v, k) => `x-a${k}: &a${k} ${v}`).join('\n');
        const tail = {
          secrets: `secrets:\n  db_pw:\n    <<: *a${j}\n`,
          'services.api': `services:\n  api:\n    <<: *a${j}\n`,
          'services.api.secrets': `services:\n  api:\n    secrets: *a${j}\nsecrets:\n  db_pw: {file: ./pw}\n`,
          grant: `services:\n  api:\n    secrets:\n      - <<: *a${j}\n        source: db_pw\nsecrets:\n  db_pw: {file: ./pw}\n`,
          'services.api.deploy': `services:\n  api:\n    deploy: *a${j}\n`,
        }[where];
        load(`${head}\n${tail}`, env, side);
      }),
      runs(300),
    );
  });

  it('alias bombs (billion laughs: levels × fan-out × leaf width): refused with a clear error once they expand past the limit', async () => {
    const bomb = fc.record({ levels: fc.integer({ min: 2, max: 12 }), fan: fc.integer({ min: 2, max: 16 }), width: fc.integer({ min: 1, max: 900 }), asMap: fc.boolean() });
    let refused = 0;
    await check(
      fc.property(bomb, ({ levels, fan, width, asMap }) => {
        const lines = [`x-l0: &l0 [${Array.from({ length: width }, (_, i) => `v${i}`).join(', ')}]`];
        for (let l = 1; l <= levels; l++) {
          const refs = Array.from({ length: fan }, (_, i) => (asMap ? `k${i}: *l${l - 1}` : `*l${l - 1}`)).join(', ');
          lines.push(asMap ? `x-l${l}: &l${l} {${refs}}` : `x-l${l}: &l${l} [${refs}]`);
        }
        const out = load(`${lines.join('\n')}\nservices: {}\n`);
        const expanded = width * fan ** levels;
        if (expanded > MAX_VALUES) {
          expect(refusal(out)).to.match(/Excessive alias count|expands to more than|at most/);
          refused++;
        }
      }),
      runs(150),
    );
    expect(refused, 'the generator makes bombs').to.be.greaterThan(0);
  });

  it('one wide anchor used many times (passes maxAliasCount): refused before it is walked', async () => {
    await check(
      fc.property(fc.integer({ min: 300, max: MAX_LIST_ITEMS }), fc.integer({ min: 700, max: 990 }), (width, uses) => {
        const anchor = `x-a: &a [${Array.from({ length: width }, (_, i) => `"v${i}"`).join(',')}]`;
        const out = load(`${anchor}\nx-b: [${Array(uses).fill('*a').join(',')}]\n`);
        expect(refusal(out)).to.match(/expands to more than \d+ values/);
      }),
      runs(10),
    );
  });

  it('deep nesting (lists, flow maps, block maps, past the limit and past the stack): refused with a clear error', async () => {
    const nesting = fc.record({ depth: fc.integer({ min: MAX_DEPTH + 1, max: 30_000 }), kind: fc.constantFrom('list', 'flow-map', 'block-map', 'mixed') });
    await check(
      fc.property(nesting, ({ depth, kind }) => {
        let text: string;
        if (kind === 'list') text = `x-a: ${'['.repeat(depth)}${']'.repeat(depth)}\n`;
        else if (kind === 'flow-map') text = `x-a: ${'{a: '.repeat(depth)}1${'}'.repeat(depth)}\n`;
        else if (kind === 'mixed') text = `x-a: ${'[{a: '.repeat(depth)}1${'}]'.repeat(depth)}\n`;
        else text = `x-a:\n${Array.from({ length: Math.min(depth, 3000) }, (_, i) => `${' '.repeat(i + 1)}k:`).join('\n')} 1\n`;
        expect(refusal(load(text))).to.match(/nested more than|call stack/);
      }),
      runs(8),
    );
  });

  it('huge strings (names, labels, keys, variable values up to 4 MiB): a plan or a ComposeError whose message stays short', async () => {
    const huge = fc.record({ size: fc.integer({ min: 100_000, max: 4 << 20 }), where: fc.constantFrom('name', 'label', 'key', 'env', 'target', 'bad-template') });
    await check(
      fc.property(huge, ({ size, where }) => {
        const big = 'a'.repeat(size);
        const text = {
          name: `name: ${big}\n`,
          label: `secrets:\n  s:\n    file: ./pw\n    labels: {l: ${big}}\n`,
          key: `secrets:\n  ${big}:\n    file: ./pw\n`,
          env: `secrets:\n  s:\n    environment: BIG\n`,
          target: `services:\n  api:\n    secrets: [{source: s, target: ${big}}]\nsecrets:\n  s:\n    file: ./pw\n`,
          'bad-template': `x-a: "\${${big}"\n`,
        }[where];
        const out = load(text, { BIG: big }, side);
        if ('refused' in out) expect(out.refused.message.length).to.be.below(600);
      }),
      runs(5),
    );
  });

  it('a list or a mapping as a key (valid YAML, which yaml would stringify with a warning on stderr): refused at its line', () => {
    expect(refusal(load('x-a: 1\n? [a, b]\n: 1\n'))).to.equal('a key must be a name, not a list, a mapping or a tagged value');
    expect(refusal(load('x-a:\n  {a: 1}: 2\n'))).to.equal('a key must be a name, not a list, a mapping or a tagged value');
    expect('refused' in load('x-a:\n  {a: 1}: 2\n') && load('x-a:\n  {a: 1}: 2\n')).to.have.nested.property('refused.location.line', 2);
    expect(refusal(load('x-a:\n  !!binary aGk= : 2\n'))).to.equal('a key must be a name, not a list, a mapping or a tagged value');
    // Positive control: an alias to a scalar is a fine key.
    expect(refusal(load('x-n: &n api\nx-a:\n  *n : 1\n'))).to.equal('(loaded)');
  });

  it('a list longer than the limit (quadratic uniqueItems in the spec): refused', () => {
    const out = load(`services:\n  api:\n    ports: [${Array.from({ length: MAX_LIST_ITEMS + 1 }, (_, i) => i).join(',')}]\n`);
    expect(refusal(out)).to.equal(`a list of ${MAX_LIST_ITEMS + 1} items; at most ${MAX_LIST_ITEMS} are accepted`);
    // Positive control: at the limit it loads (ports are accepted and ignored).
    expect('ok' in load(`services:\n  api:\n    ports: [${Array.from({ length: MAX_LIST_ITEMS }, (_, i) => i).join(',')}]\n`)).to.equal(true);
  });
});

describe('compose interpolation: properties (fast-check)', function () {
  this.timeout(60_000);
  const ENV: Record<string, string> = { SET: 'value', EMPTY: '' };
  const lookup = (name: string): string | undefined => (Object.hasOwn(ENV, name) ? ENV[name] : undefined);
  const escape = (s: string): string => s.replaceAll('$', '$$$$');
  const text = fc.string({ unit: fc.constantFrom('$', '{', '}', 'a', 'B', '_', '1', ':', '-', '?', '+', ' ', 'é', '\n'), maxLength: 40 });

  it('$$ round trip: any text with each $ doubled interpolates back to itself', async () => {
    await check(fc.property(fc.string({ unit: 'grapheme', maxLength: 60 }), text, (s, t) => {
          expect(interpolate(escape(s + t), lookup, () => undefined)).to.equal(s + t);
        }), runs(400));
  });

  it('${UNSET:-x} is x, ${SET:-x} is the value, ${UNSET:?x} is an error naming UNSET (x any escaped text without })', async () => {
    const noBrace = fc.string({ maxLength: 30 }).filter((s) => !s.includes('}'));
    await check(
      fc.property(noBrace, (x) => {
        const unset: string[] = [];
        expect(interpolate(`\${UNSET:-${escape(x)}}`, lookup, (n) => unset.push(n))).to.equal(x);
        expect(interpolate(`\${SET:-${escape(x)}}`, lookup, () => undefined)).to.equal('value');
        expect(unset).to.deep.equal([]);
        expect(() => interpolate(`\${UNSET:?${escape(x)}}`, lookup, () => undefined)).to.throw(InterpolationError, /^required variable UNSET is missing a value/);
      }),
      runs(300),
    );
  });

  it('random templates ($, ${, }, operators, names; nested up to 200 deep): a string or an InterpolationError with a short message', async () => {
    const nested = fc.tuple(fc.integer({ min: 0, max: 200 }), fc.constantFrom(':-', '-', ':+', '+', ':?', '?'), fc.boolean()).map(([d, op, closed]) => `${`\${UNSET${op}`.repeat(d)}x${closed ? '}'.repeat(d) : ''}`);
    await check(
      fc.property(fc.oneof(text, nested), (t) => {
        try {
          expect(interpolate(t, lookup, () => undefined)).to.be.a('string');
        } catch (err) {
          if (!(err instanceof InterpolationError)) throw err;
          expect(err.message.length).to.be.below(300);
        }
      }),
      runs(400),
    );
  });
});
