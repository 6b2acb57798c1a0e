/**
 * Who read what, the parts without I/O: the agent folding a mount's lookup
 * records into one entry per secret version and sending only what changed
 * (bounded per report), and the store's ledger (merging, bounds, a removed
 * node's entries going).
 */
import { expect } from 'chai';
import * as acl from '../../src/acl/index.js';
import { readEntries, ReadReporter, type ContainerReads } from '../../src/agent/read-reports.js';
import { assertValidReadReport } from '../../src/server/agent-input.js';
import { MAX_READ_ENTRIES_PER_REPORT, type WireReadEntry } from '../../src/protocol/index.js';
import { ReadLedger } from '../../src/rotation/index.js';
import type { LookupRecord } from '../../src/tmpfs-mount/index.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();
const record = (file: string, secret: string, version: number, first: number, released: number | null): LookupRecord => ({
  file,
  secret,
  version,
  firstLookup: { at: at(first), pid: 1, uid: 0, gid: 0 },
  releasedAt: released === null ? null : at(released),
});

describe('read reports: folding a mount\'s lookups', () => {
  it('gives one entry per secret version: the earliest first read, held while any of its files is held', () => {
    const entries = readEntries('c1', [
      record('db', 'db_password', 1, 10, 50),
      record('db-copy', 'db_password', 1, 5, null),
      record('db', 'db_password', 2, 60, null),
      record('key', 'api_key', 3, 20, 30),
      record('key2', 'api_key', 3, 25, 40),
    ]);
    expect(entries).to.deep.equal([
      { container_id: 'c1', secret: 'db_password', version: 1, first_read_at_ms: T0 + 5, released_at_ms: 0 },
      { container_id: 'c1', secret: 'db_password', version: 2, first_read_at_ms: T0 + 60, released_at_ms: 0 },
      { container_id: 'c1', secret: 'api_key', version: 3, first_read_at_ms: T0 + 20, released_at_ms: T0 + 40 },
    ]);
  });

  it('releases what is held at a stop, never dates a release before the read, and skips rendered templates', () => {
    const entries = readEntries('c1', [record('db', 'db_password', 1, 10, null), record('x', 'odd', 1, 30, 20), record('app.conf', 'template/api/app.conf', 4, 1, null)], T0 + 100);
    expect(entries).to.deep.equal([
      { container_id: 'c1', secret: 'db_password', version: 1, first_read_at_ms: T0 + 10, released_at_ms: T0 + 100 },
      { container_id: 'c1', secret: 'odd', version: 1, first_read_at_ms: T0 + 30, released_at_ms: T0 + 30 },
    ]);
  });
});

describe('read reports: the agent\'s reporter', () => {
  const reporter = (containers: ContainerReads[], connected = { up: true }) => {
    const sent: WireReadEntry[][] = [];
    const r = new ReadReporter({ containers: () => containers, send: (e) => connected.up && (sent.push(e), true), intervalMs: 3_600_000 });
    return { r, sent };
  };

  it('sends only what changed, and everything again to a new session', () => {
    const lookups = [record('db', 'db_password', 1, 10, null)];
    const { r, sent } = reporter([{ id: 'c1', lookups }, { id: 'c-idle', lookups: [] }]);
    r.flush();
    r.flush();
    expect(sent).to.have.length(1);
    lookups.push(record('db', 'db_password', 2, 20, null));
    lookups[0]!.releasedAt = at(30);
    r.flush();
    expect(sent[1]!.map((e) => [e.version, e.released_at_ms])).to.deep.equal([
      [1, T0 + 30],
      [2, 0],
    ]);
    r.resend();
    r.flush();
    expect(sent[2]).to.have.length(2);
    r.close();
  });

  it('keeps what it could not send for the next try, and caps each report', () => {
    const connected = { up: false };
    const many = Array.from({ length: MAX_READ_ENTRIES_PER_REPORT + 10 }, (_, i) => record(`f${i}`, `s${i}`, 1, i, null));
    const { r, sent } = reporter([{ id: 'c1', lookups: many }], connected);
    r.flush();
    expect(sent).to.have.length(0);
    connected.up = true;
    r.flush();
    r.flush();
    r.flush();
    expect(sent.map((s) => s.length)).to.deep.equal([MAX_READ_ENTRIES_PER_REPORT, 10]);
    r.close();
  });

  it('sends a stopping container\'s entries at once, released', () => {
    const containers: ContainerReads[] = [{ id: 'c1', lookups: [record('db', 'db_password', 1, 10, null)] }];
    const { r, sent } = reporter(containers);
    r.flush();
    const lookups = containers.pop()!.lookups;
    r.stopped('c1', lookups);
    expect(sent).to.have.length(2);
    expect(sent[1]![0]!.released_at_ms).to.be.greaterThan(0);
    r.flush();
    expect(sent).to.have.length(2);
    r.close();
  });
});

describe('read reports: what the store accepts', () => {
  const now = T0 + 1_000_000;
  const ok: WireReadEntry = { container_id: 'c1', secret: 'db', version: 1, first_read_at_ms: T0, released_at_ms: 0 };
  it('accepts a well-formed report and refuses each malformed one with a reason', () => {
    expect(() => assertValidReadReport([ok, { ...ok, version: 2, released_at_ms: T0 + 5 }], now)).to.not.throw();
    const bad: [WireReadEntry[], RegExp][] = [
      [[{ ...ok, container_id: '../x' }], /invalid container id/],
      [[{ ...ok, secret: 'a b' }], /invalid secret name/],
      [[{ ...ok, version: 0 }], /not a version number/],
      [[{ ...ok, first_read_at_ms: -1 }], /first read time/],
      [[{ ...ok, first_read_at_ms: now + 2 * 24 * 3600 * 1000 }], /first read time/],
      [[{ ...ok, released_at_ms: T0 - 1 }], /release time/],
      [[ok, ok], /listed twice/],
      [Array.from({ length: MAX_READ_ENTRIES_PER_REPORT + 1 }, (_, i) => ({ ...ok, version: i + 1 })), /at most 256/],
    ];
    for (const [entries, message] of bad) expect(() => assertValidReadReport(entries, now), message.source).to.throw(message);
  });

  it('is an audit read in the route table', () => {
    expect(acl.actionForRequest('GET', '/v1/audit/reads?secret=db')).to.equal('audit.read');
    expect(acl.can('auditor', 'audit.read')).to.equal(true);
  });
});

describe('read ledger (store)', () => {
  const entry = (container: string, version: number, first: number, released: number | null, secret = 'db') => ({
    container,
    service: 'api',
    secret,
    version,
    firstReadAt: new Date(T0 + first),
    releasedAt: released === null ? null : new Date(T0 + released),
  });

  it('keeps the earliest first read, and a release for good', () => {
    const ledger = new ReadLedger();
    ledger.record('n1', entry('c1', 1, 10, null), new Date(T0 + 100));
    ledger.record('n1', entry('c1', 1, 5, 50), new Date(T0 + 200));
    ledger.record('n1', entry('c1', 1, 20, null), new Date(T0 + 300));
    expect(ledger.list()).to.deep.equal([
      { node: 'n1', container: 'c1', service: 'api', secret: 'db', version: 1, firstReadAt: at(5), state: 'released', releasedAt: at(50), reportedAt: at(300) },
    ]);
  });

  it('answers per secret, in order, and forgets a removed node', () => {
    const ledger = new ReadLedger();
    ledger.record('n2', entry('c1', 2, 0, null), new Date(T0));
    ledger.record('n1', entry('c9', 2, 0, null), new Date(T0));
    ledger.record('n1', entry('c1', 1, 0, null), new Date(T0));
    ledger.record('n1', entry('c1', 1, 0, null, 'other'), new Date(T0));
    expect(ledger.list({ secret: 'db' }).map((r) => `${r.version}:${r.node}:${r.container}`)).to.deep.equal(['1:n1:c1', '2:n1:c9', '2:n2:c1']);
    ledger.forgetNode('n1');
    expect(ledger.list().map((r) => r.node)).to.deep.equal(['n2']);
  });

  it('stays within its bounds, the least recently reported going first', () => {
    const ledger = new ReadLedger({ maxEntries: 5, maxPerNode: 3 });
    for (let v = 1; v <= 4; v++) ledger.record('n1', entry('c1', v, v, null), new Date(T0 + v));
    expect(ledger.list().map((r) => r.version)).to.deep.equal([2, 3, 4]);
    for (let v = 1; v <= 3; v++) ledger.record('n2', entry('c1', v, v, null), new Date(T0 + 10 + v));
    expect(ledger.size).to.equal(5);
    expect(ledger.list().filter((r) => r.node === 'n1').map((r) => r.version)).to.deep.equal([3, 4]);
  });
});
