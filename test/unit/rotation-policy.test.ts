import { expect } from 'chai';
import { createHmac } from 'node:crypto';
import {
  afterRun,
  chainEntries,
  encodeValue,
  generateEncoded,
  isDue,
  newSchedule,
  parsePeriod,
  PropagationTracker,
  verifyAuditLog,
  type AuditEntry,
  type AuditRecord,
} from '../../src/rotation/index.js';
import { hushErrorCode } from '../helpers/assert.js';

describe('rotation: generated values in a charset', () => {
  const bytes = Uint8Array.from([0, 1, 2, 250, 255, 17, 99, 128]);

  it('encodes the same bytes as base64, hex and alnum, and keeps raw bytes raw', () => {
    expect(Buffer.from(encodeValue(bytes, 'base64')).toString()).to.equal(Buffer.from(bytes).toString('base64'));
    expect(Buffer.from(encodeValue(bytes, 'hex')).toString()).to.equal('000102fafF116380'.toLowerCase());
    expect([...encodeValue(bytes, 'raw')]).to.deep.equal([...bytes]);
    const alnum = Buffer.from(encodeValue(bytes, 'alnum')).toString();
    expect(alnum).to.match(/^[0-9A-Za-z]+$/);
    // 8 bytes need ceil(64 / log2 62) = 11 base-62 digits, whatever the value (leading zero bytes included).
    expect(alnum).to.have.length(11);
    expect(Buffer.from(encodeValue(new Uint8Array(8), 'alnum')).toString()).to.equal('00000000000');
    // Decoding the base-62 number gives the bytes back: no entropy lost.
    let n = 0n;
    for (const c of alnum) n = n * 62n + BigInt('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'.indexOf(c));
    expect(n.toString(16).padStart(16, '0')).to.equal(Buffer.from(bytes).toString('hex'));
  });

  it('draws the bytes from the source and encodes them', () => {
    const value = generateEncoded(32, 'hex', (n) => new Uint8Array(n).fill(0xab));
    expect(Buffer.from(value).toString()).to.equal('ab'.repeat(32));
  });
});

describe('rotation: schedules', () => {
  it('parses periods, and refuses what is not one or out of bounds', () => {
    expect(parsePeriod('24h')).to.equal(86_400_000);
    expect(parsePeriod('1h30m')).to.equal(5_400_000);
    expect(parsePeriod('2s')).to.equal(2000);
    expect(parsePeriod('7d')).to.equal(7 * 86_400_000);
    for (const bad of ['', '24', 'h', '1.5h', '0s', '500d', '24h ', '-1h', '1y']) expect(hushErrorCode(() => parsePeriod(bad)), bad).to.equal('bad_request');
  });

  it('is first due one period after it is set, and after a run one period after that run (missed periods are not made up)', () => {
    const t0 = new Date('2025-01-01T00:00:00Z');
    const s = newSchedule('1h', 32, 'alnum', t0);
    expect(s).to.deep.include({ every: '1h', everyMs: 3_600_000, generate: 32, charset: 'alnum', nextDue: '2025-01-01T01:00:00.000Z' });
    expect(isDue(s, new Date('2025-01-01T00:59:59Z'))).to.equal(false);
    expect(isDue(s, new Date('2025-01-01T01:00:00Z'))).to.equal(true);
    // Down for five hours: one run at start, the next an hour after it.
    const late = new Date('2025-01-01T06:00:00Z');
    expect(afterRun(s, late).nextDue).to.equal('2025-01-01T07:00:00.000Z');
    expect(hushErrorCode(() => newSchedule('1h', 0, 'raw', t0))).to.equal('bad_request');
  });
});

describe('rotation: propagation, per version', () => {
  it('keeps when a node first acked a version, not the time of its later acks', () => {
    const tracker = new PropagationTracker();
    const t1 = new Date('2025-01-01T00:00:00Z');
    const t2 = new Date('2025-01-01T00:00:05Z');
    tracker.acked('n1', 5, new Map([['db', 2]]), t1);
    // A later ack (another secret changed) leaves db at version 2, acked at t1.
    tracker.acked('n1', 6, new Map([['db', 2], ['api', 1]]), t2);
    const p = tracker.propagation('db', 2, ['n1'], new Map([['n1', 'web-1']]));
    expect(p).to.deep.equal({ version: 2, complete: true, nodes: [{ node: 'n1', name: 'web-1', version: 2, ackedAt: t1.toISOString() }] });
    tracker.acked('n1', 7, new Map([['db', 3]]), t2);
    expect(tracker.propagation('db', 3, ['n1']).nodes[0]!.ackedAt).to.equal(t2.toISOString());
  });

  it('is complete at once when no node is entitled', () => {
    expect(new PropagationTracker().propagation('db', 4, [])).to.deep.equal({ version: 4, complete: true, nodes: [] });
  });
});

describe('rotation: the audit chain', () => {
  // Any keyed MAC does for the policy; the store uses keyed BLAKE2b (log-auth.ts).
  const mac = (key: string) => (prev: Buffer, payload: Buffer) => createHmac('sha256', key).update(prev).update(payload).digest();
  const entry = (i: number): AuditEntry => ({ time: `2025-01-01T00:00:0${i}.000Z`, actor: 'local-root', action: 'secret.rotate', object: `secret/s${i}`, result: 'ok', detail: `version ${i}` });
  const build = (n: number, key = 'k') => chainEntries(Array.from({ length: n }, (_, i) => entry(i + 1)), 0, undefined, mac(key));
  const stored = (records: (AuditRecord | undefined)[], positions?: number[]) => records.map((record, i) => ({ position: positions?.[i] ?? i + 1, record }));
  const head = (r: AuditRecord) => ({ seq: r.seq, tag: r.tag });

  it('chains records across appends and verifies an untouched log', () => {
    const first = build(3);
    const more = chainEntries([entry(4), entry(5)], 3, first[2]!.tag, mac('k'));
    const all = [...first, ...more];
    expect(all.map((r) => r.seq)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(verifyAuditLog(stored(all), head(all[4]!), mac('k'))).to.deep.include({ ok: true, records: 5, problems: [] });
  });

  it('finds an edited record, and where', () => {
    const log = build(5);
    const edited = log.map((r) => (r.seq === 3 ? { ...r, result: 'forbidden' } : r));
    const v = verifyAuditLog(stored(edited), head(log[4]!), mac('k'));
    expect(v.ok).to.equal(false);
    expect(v.problems).to.have.length(1);
    expect(v.problems[0]).to.include({ seq: 3, problem: 'edited' });
  });

  it('finds a record re-forged with a plain hash or another key (the tag needs the key)', () => {
    const log = build(4);
    const forged = chainEntries([{ ...entry(2), actor: 'someone-else' }], 1, log[0]!.tag, mac('not the key'))[0]!;
    const v = verifyAuditLog(stored([log[0], forged, log[2], log[3]]), head(log[3]!), mac('k'));
    expect(v.problems.map((p) => [p.seq, p.problem])).to.deep.equal([
      [2, 'edited'],
      [3, 'edited'],
    ]);
  });

  it('finds a removed record', () => {
    const log = build(5);
    const v = verifyAuditLog(stored([log[0], log[1], log[3], log[4]], [1, 2, 4, 5]), head(log[4]!), mac('k'));
    expect(v.problems.map((p) => [p.seq, p.problem])).to.deep.equal([[3, 'removed']]);
  });

  it('finds reordered records', () => {
    const log = build(5);
    const v = verifyAuditLog(stored([log[0], log[2], log[1], log[3], log[4]]), head(log[4]!), mac('k'));
    expect(v.problems.map((p) => [p.seq, p.problem])).to.deep.equal([
      [2, 'reordered'],
      [3, 'reordered'],
    ]);
  });

  it('finds a cut-off tail: against the head, and against the store\'s memory when the head was rewound too', () => {
    const log = build(5);
    const cut = verifyAuditLog(stored(log.slice(0, 3)), head(log[4]!), mac('k'));
    expect(cut.problems.map((p) => [p.seq, p.problem])).to.deep.equal([[4, 'truncated']]);
    // Head rewound to record 3: the chain alone is consistent, the store's high-water mark is not.
    expect(verifyAuditLog(stored(log.slice(0, 3)), head(log[2]!), mac('k')).ok).to.equal(true);
    const rewound = verifyAuditLog(stored(log.slice(0, 3)), head(log[2]!), mac('k'), 5);
    expect(rewound.problems.map((p) => [p.seq, p.problem])).to.deep.equal([[4, 'truncated']]);
  });

  it('finds records with no head', () => {
    const log = build(2);
    expect(verifyAuditLog(stored(log), undefined, mac('k')).problems.map((p) => p.problem)).to.deep.equal(['head']);
  });
});
