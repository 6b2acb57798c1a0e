/**
 * The records behind admin client certificates: a certificate is admitted by
 * its record (serial, name, role, lifetime, revocation), never by its OU alone.
 */
import { expect } from 'chai';
import { constants } from 'node:fs';
import { lstat, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HushError } from '../../src/errors/index.js';
import { createPrivateFile } from '../../src/files/index.js';
import { AdminCertStore, deriveLogAuth, EmbeddedBackend, loadSodium, type AdminCertRecord, type LogAuth } from '../../src/store/index.js';
import { rejection } from '../helpers/assert.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const record = (name: string, serial: string, extra: Partial<AdminCertRecord> = {}): AdminCertRecord => ({
  name,
  role: 'auditor',
  serial,
  issuedAt: new Date().toISOString(),
  notAfter: new Date(Date.now() + 3600_000).toISOString(),
  ...extra,
});

function refusal(fn: () => unknown): HushError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(HushError);
    return err as HushError;
  }
  throw new Error('expected a refusal');
}

describe('admin certificate records', () => {
  let dir: string;
  let backend: EmbeddedBackend;
  let auth: LogAuth;
  before(async () => (auth = deriveLogAuth(await loadSodium(), Buffer.alloc(32, 7))));
  beforeEach(async () => {
    dir = await tempDir();
    backend = await EmbeddedBackend.open({ auth, dir });
  });
  afterEach(async () => {
    await backend.close();
    await removeDir(dir);
  });

  it('admits a certificate only as its record says: serial on record, same name, same role', async () => {
    const certs = await AdminCertStore.open(backend);
    await certs.add(record('alice', 'aa'.repeat(16)));
    expect(certs.admit({ serial: 'AA'.repeat(16), commonName: 'alice', role: 'auditor' })).to.equal('auditor');

    const cases: [string, { serial: string; commonName: unknown; role: unknown }, RegExp][] = [
      ['OU says admin, record says auditor', { serial: 'aa'.repeat(16), commonName: 'alice', role: 'admin' }, /does not match its record \(name "alice", role auditor\)/],
      ['another name', { serial: 'aa'.repeat(16), commonName: 'mallory', role: 'auditor' }, /does not match its record/],
      ['two OUs', { serial: 'aa'.repeat(16), commonName: 'alice', role: ['auditor', 'admin'] }, /does not match its record/],
      ['serial not on record', { serial: 'bb'.repeat(16), commonName: 'alice', role: 'admin' }, /is not on record/],
    ];
    for (const [what, peer, message] of cases) {
      const err = refusal(() => certs.admit(peer));
      expect(err.code, what).to.equal('unauthorized');
      expect(err.message, what).to.match(message);
    }
  });

  it('refuses an expired certificate even on a connection opened before it expired', async () => {
    const certs = await AdminCertStore.open(backend);
    await certs.add(record('bob', 'cc'.repeat(16), { notAfter: new Date(Date.now() + 1000).toISOString() }));
    expect(certs.admit({ serial: 'cc'.repeat(16), commonName: 'bob', role: 'auditor' })).to.equal('auditor');
    expect(refusal(() => certs.admit({ serial: 'cc'.repeat(16), commonName: 'bob', role: 'auditor' }, Date.now() + 2000)).message).to.match(/expired at/);
  });

  it('keeps names unique among live certificates; revocation frees the name and is seen by a second reader of the same log', async () => {
    const certs = await AdminCertStore.open(backend);
    const revokedSeen: string[] = [];
    certs.onRevoked((r) => revokedSeen.push(r.serial));
    await certs.add(record('carol', 'dd'.repeat(16)));
    expect((await rejection(certs.add(record('carol', 'ee'.repeat(16))))).message).to.match(/exists already/);
    const revoking = Date.now();
    const revoked = await certs.revoke('carol');
    // When it was revoked, as an ISO timestamp (not just any string): between the call and now.
    expect(revoked.revokedAt).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(revoked.revokedAt!)).to.be.within(revoking, Date.now());
    expect(revokedSeen).to.deep.equal(['dd'.repeat(16)]);
    await certs.add(record('carol', 'ee'.repeat(16)));
    expect(certs.list().map((r) => [r.serial, r.revokedAt === undefined])).to.deep.equal([
      ['dd'.repeat(16), false],
      ['ee'.repeat(16), true],
    ]);

    // After a restart the records (and the revocation) come back from the log.
    await backend.close();
    backend = await EmbeddedBackend.open({ auth, dir });
    const reopened = await AdminCertStore.open(backend);
    expect(refusal(() => reopened.admit({ serial: 'dd'.repeat(16), commonName: 'carol', role: 'auditor' })).message).to.match(/was revoked at/);
    expect(reopened.admit({ serial: 'ee'.repeat(16), commonName: 'carol', role: 'auditor' })).to.equal('auditor');
  });
});

describe('createPrivateFile', () => {
  let dir: string;
  beforeEach(async () => (dir = await tempDir()));
  afterEach(async () => removeDir(dir));

  it('never writes through a symlink or into an existing file, even one planted after any check (O_EXCL | O_NOFOLLOW)', async () => {
    expect(constants.O_NOFOLLOW).to.be.a('number');
    const target = join(dir, 'attacker');
    await mkdir(target);
    await symlink(join(target, 'loot.pem'), join(dir, 'key.pem'));
    expect((await rejection(createPrivateFile(join(dir, 'key.pem'), 'KEY'))).message).to.match(/exists already \(file or symlink\)/);
    expect(await readdir(target)).to.deep.equal([]);
    await writeFile(join(dir, 'cert.pem'), 'theirs');
    expect((await rejection(createPrivateFile(join(dir, 'cert.pem'), 'CERT'))).message).to.match(/exists already/);

    await createPrivateFile(join(dir, 'ca.pem'), 'CA');
    expect((await lstat(join(dir, 'ca.pem'))).mode & 0o777).to.equal(0o600);
  });
});
