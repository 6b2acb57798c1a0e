/**
 * The store as a real process on a real disk: crash with kill -9, restart,
 * check that every acknowledged write is there and decrypts byte-identical.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { appendFile, cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.js';
import { call, closeClients } from '../helpers/http.js';
import { hush, startStoreProcess, stopProcess, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { appendUnkeyedCommit, lastSegment, readRecords } from '../helpers/unkeyed-log.js';

describe('store process (integration)', function () {
  this.timeout(120_000);
  let dir: string;
  let data: string;
  let socket: string;
  let store: StoreProcess | undefined;

  beforeEach(async () => {
    dir = await tempDir();
    data = join(dir, 'data');
    socket = join(dir, 'admin.sock');
  });
  afterEach(async () => {
    closeClients();
    if (store) await stopProcess(store, 'SIGKILL');
    store = undefined;
    await removeDir(dir);
  });

  const start = (extraArgs: string[] = []) => startStoreProcess({ data, socket, home: dir, extraArgs });

  it('keeps every acknowledged write across kill -9, values byte-identical and never on disk in clear', async () => {
    store = await start();
    const values = new Map<string, Buffer>();
    for (let i = 0; i < 300; i++) values.set(`secret-${i}`, Buffer.concat([Buffer.from(`marker-${i}-`), randomBytes(48)]));
    const names = [...values.keys()];
    const acknowledged: string[] = [];
    let next = 0;
    let killed = false;
    const client = async () => {
      while (next < names.length) {
        const name = names[next++];
        if (next === 150 && !killed) {
          killed = true;
          store!.child.kill('SIGKILL');
        }
        try {
          const reply = await call(socket, 'POST', '/v1/secrets', { name, data: values.get(name)!.toString('base64') });
          if (reply.status === 201) acknowledged.push(name);
        } catch {
          // connection refused or reset: the store is gone; this write was not acknowledged
        }
      }
    };
    await Promise.all(Array.from({ length: 32 }, client));
    await store.exited;
    expect(acknowledged.length).to.be.greaterThan(100);

    // Restart the process: every acknowledged secret is listed.
    closeClients();
    store = await start();
    const listed = new Set((await call<{ name: string }[]>(socket, 'GET', '/v1/secrets')).body.map((s) => s.name));
    for (const name of acknowledged) expect(listed.has(name), name).to.equal(true);
    await stopProcess(store);
    store = undefined;

    // Open the data directory directly and decrypt every acknowledged value.
    const opened = await openStore({ dataDir: data });
    try {
      for (const name of acknowledged) expect(Buffer.from((await opened.secrets.reveal(name)).data).equals(values.get(name)!), name).to.equal(true);
    } finally {
      await opened.backend.close();
    }

    // No value, nor its base64, anywhere in the data directory.
    const scan = async () => Buffer.concat(await Promise.all((await readdir(data)).map((f) => readFile(join(data, f)))));
    const everything = await scan();
    for (const value of values.values()) {
      expect(everything.includes(value.subarray(0, 20))).to.equal(false);
      expect(everything.includes(Buffer.from(value.toString('base64').slice(0, 24)))).to.equal(false);
    }
    // Positive controls: the scan reads the log (an acknowledged secret's name is in it in clear), and finds a value planted in the directory.
    expect(everything.includes(Buffer.from(`secrets/${acknowledged[0]}`))).to.equal(true);
    const plantedValue = values.get(acknowledged[0]!)!;
    await writeFile(join(data, 'planted'), Buffer.concat([plantedValue, Buffer.from(` ${plantedValue.toString('base64')}`)]));
    const withPlanted = await scan();
    expect(withPlanted.includes(plantedValue.subarray(0, 20))).to.equal(true);
    expect(withPlanted.includes(Buffer.from(plantedValue.toString('base64').slice(0, 24)))).to.equal(true);
  });

  it('refuses to start when the log is damaged in the middle, naming the file and offset', async () => {
    store = await start();
    for (let i = 0; i < 40; i++) expect((await call(socket, 'POST', '/v1/secrets', { name: `s${i}`, data: 'dmFsdWU=' })).status).to.equal(201);
    await stopProcess(store);
    store = undefined;
    const wal = join(data, (await readdir(data)).filter((f) => f.startsWith('wal-')).sort().at(-1)!);
    const bytes = await readFile(wal);
    bytes[Math.floor(bytes.length / 2)] ^= 0x04;
    await writeFile(wal, bytes);
    const error = await start().then(
      () => 'started',
      (err: Error) => err.message,
    );
    expect(error).to.match(/store exited during start-up/);
    expect(error).to.match(/wal-\d+\.log: .*at offset \d+; refusing to start/);
  });

  it('answers bad input with a clear 4xx and changes nothing', async () => {
    store = await start();
    expect((await call(socket, 'POST', '/v1/secrets', { name: 'existing', data: 'b2s=' })).status).to.equal(201);
    const before = await call<{ revision: number }>(socket, 'GET', '/healthz');
    const big = Buffer.alloc(500 * 1024 + 1, 1).toString('base64');
    const cases: [string, string, string, unknown, string | undefined, number, string][] = [
      ['malformed JSON', 'POST', '/v1/secrets', undefined, '{"name": "x", "data": ', 400, 'bad_request'],
      ['not an object', 'POST', '/v1/secrets', [1, 2], undefined, 400, 'bad_request'],
      ['unknown field', 'POST', '/v1/secrets', { name: 'x', data: 'b2s=', lables: {} }, undefined, 400, 'unknown_field'],
      ['missing data', 'POST', '/v1/secrets', { name: 'x' }, undefined, 400, 'bad_request'],
      ['data not base64', 'POST', '/v1/secrets', { name: 'x', data: 'not base64!' }, undefined, 400, 'bad_request'],
      ['empty value', 'POST', '/v1/secrets', { name: 'x', data: '' }, undefined, 400, 'bad_request'],
      ['bad name', 'POST', '/v1/secrets', { name: '../etc/passwd', data: 'b2s=' }, undefined, 400, 'invalid_name'],
      ['name too long', 'POST', '/v1/secrets', { name: 'a'.repeat(65), data: 'b2s=' }, undefined, 400, 'invalid_name'],
      ['label not a string', 'POST', '/v1/secrets', { name: 'x', data: 'b2s=', labels: { a: 1 } }, undefined, 400, 'bad_request'],
      ['value over 500 KiB', 'POST', '/v1/secrets', { name: 'x', data: big }, undefined, 413, 'too_large'],
      ['body far over the limit', 'POST', '/v1/secrets', undefined, JSON.stringify({ name: 'x', data: 'A'.repeat(2_000_000) }), 413, 'too_large'],
      ['duplicate name', 'POST', '/v1/secrets', { name: 'existing', data: 'b2s=' }, undefined, 409, 'conflict'],
      ['unknown secret', 'GET', '/v1/secrets/nope', undefined, undefined, 404, 'not_found'],
      ['remove unknown', 'DELETE', '/v1/secrets/nope', undefined, undefined, 404, 'not_found'],
      ['rotate with both data and generate', 'POST', '/v1/secrets/existing/rotate', { data: 'b2s=', generate: 8 }, undefined, 400, 'bad_request'],
      ['rotate with neither', 'POST', '/v1/secrets/existing/rotate', {}, undefined, 400, 'bad_request'],
      ['unknown route', 'GET', '/v1/nothing', undefined, undefined, 404, 'not_found'],
    ];
    for (const [what, method, path, body, raw, status, code] of cases) {
      const reply = await call<{ error: { code: string; message: string } }>(socket, method, path, body, raw);
      expect(reply.status, what).to.equal(status);
      expect(reply.body.error.code, what).to.equal(code);
      expect(reply.body.error.message, what).to.be.a('string').and.not.equal('');
    }
    const after = await call<{ revision: number }>(socket, 'GET', '/healthz');
    expect(after.body.revision).to.equal(before.body.revision);
    const list = await call<{ name: string }[]>(socket, 'GET', '/v1/secrets');
    expect(list.body.map((s) => s.name)).to.deep.equal(['existing']);
  });

  it('creates its admin socket root-only', async () => {
    store = await start();
    const { stdout } = hush(['secret', 'ls'], { env: { HUSH_HOME: dir } });
    expect(stdout).to.match(/^ID\s+NAME/);
    const mode = (await import('node:fs')).statSync(socket).mode & 0o777;
    expect(mode).to.equal(0o600);
  });

  it('autolock: 423 after a restart until `hush unlock`; a wrong key is refused', async () => {
    store = await start(['--autolock']);
    const key = /HUSHKEY-1-[A-Za-z0-9_-]+/.exec(store.output())?.[0];
    expect(key, 'unlock key printed at first start').to.match(/^HUSHKEY-1-[A-Za-z0-9_-]{43}$/);
    expect((await call(socket, 'POST', '/v1/secrets', { name: 'api_token', data: 'dG9rZW4=' })).status).to.equal(201);
    await stopProcess(store, 'SIGKILL');
    closeClients();

    store = await start(['--autolock']);
    expect(store.output()).not.to.contain('HUSHKEY-1-');
    const locked = await call<{ error: { code: string } }>(socket, 'GET', '/v1/secrets');
    expect(locked.status).to.equal(423);
    expect(locked.body.error.code).to.equal('locked');
    expect((await call<{ status: string }>(socket, 'GET', '/healthz')).body.status).to.equal('locked');

    const env = { HUSH_HOST: `unix://${socket}` };
    const wrong = hush(['unlock'], { env, input: 'HUSHKEY-1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n' });
    expect(wrong.status).to.equal(1);
    expect(wrong.stderr).to.match(/^error: wrong unlock key/);
    expect((await call(socket, 'GET', '/v1/secrets')).status).to.equal(423);

    const right = hush(['unlock'], { env, input: `${key}\n` });
    expect(right.status, right.stderr).to.equal(0);
    const list = await call<{ name: string }[]>(socket, 'GET', '/v1/secrets');
    expect(list.status).to.equal(200);
    expect(list.body.map((s) => s.name)).to.deep.equal(['api_token']);
  });

  describe('keyed log', () => {
    const env = () => ({ HUSH_HOST: `unix://${socket}` });
    const unlockKeyOf = (proc: StoreProcess) => /HUSHKEY-1-[A-Za-z0-9_-]+/.exec(proc.output())![0];
    const startOutcome = (args: string[] = []) =>
      start(args).then(
        (proc) => {
          store = proc;
          return 'started';
        },
        (err: Error) => err.message,
      );

    /** A store with a secret, a service constrained to zone=eu, and a revoked node n1; stopped. */
    async function prepare(args: string[] = []): Promise<{ key?: string; service: string; nodeId: string }> {
      store = await start(args);
      const key = args.includes('--autolock') ? unlockKeyOf(store) : undefined;
      if (key) expect(hush(['unlock'], { env: env(), input: key }).status).to.equal(0);
      expect((await call(socket, 'POST', '/v1/secrets', { name: 'db_password', data: 'czNjcmV0' })).status).to.equal(201);
      const created = await call(socket, 'POST', '/v1/services', { name: 'db', grants: [{ source: 'db_password' }], constraints: ['node.labels.zone==eu'] });
      expect(created.status).to.equal(201);
      await stopProcess(store);
      store = undefined;
      closeClients();
      const opened = await openStore({ dataDir: data });
      try {
        if (key) await opened.keyring.unlock(key);
        const node = await opened.nodes.register({ name: 'n1', hostname: 'n1', engineLabels: { zone: 'eu' } });
        await opened.nodes.revoke(node.id);
        return { key, service: (await opened.backend.get('services/db'))!.value, nodeId: node.id };
      } finally {
        await opened.backend.close();
      }
    }

    /**
     * The demonstration, as someone who can write the data directory but has
     * no key: one record in the format of before (chained with plain
     * SHA-256 from the last record) that drops db's constraint and un-revokes n1.
     */
    async function forge(service: string, nodeId: string): Promise<{ wal: string; offset: number }> {
      const wal = await lastSegment(data);
      const node = { id: nodeId, name: 'n1', hostname: 'n1', labels: { zone: 'eu' }, role: 'node', containers: [], createdAt: '2020-01-01T00:00:00.000Z', updatedAt: '2020-01-01T00:00:00.000Z' };
      const offset = await appendUnkeyedCommit(wal, [
        { type: 'put', key: 'services/db', value: JSON.stringify({ ...JSON.parse(service), constraints: [] }) },
        { type: 'delete', key: `revoked/${nodeId}` },
        { type: 'put', key: `nodes/${nodeId}`, value: JSON.stringify(node) },
      ]);
      return { wal, offset };
    }

    it('refuses to start on a record appended without the key (drops a constraint, un-revokes a node), naming file and offset', async () => {
      const { service, nodeId } = await prepare();
      const { wal, offset } = await forge(service, nodeId);
      const outcome = await startOutcome();
      expect(outcome).to.match(/store exited during start-up/);
      expect(outcome).to.contain(`${wal}: record fails its authentication (written without this store's key, or damaged) at offset ${offset}; refusing to start`);
    });

    it('autolock: `hush unlock` refuses a log with a record appended without the key, naming file and offset; the store stays locked', async () => {
      const { key, service, nodeId } = await prepare(['--autolock']);
      const { wal, offset } = await forge(service, nodeId);
      store = await start(['--autolock']);
      const unlock = hush(['unlock'], { env: env(), input: `${key}\n` });
      expect(unlock.status).to.equal(1);
      expect(unlock.stderr).to.match(/^error: /);
      expect(unlock.stderr).to.contain(`${wal}: record fails its authentication (written without this store's key, or damaged) at offset ${offset}`);
      expect((await call(socket, 'GET', '/v1/services/db')).status).to.equal(423);
      expect((await call(socket, 'GET', `/v1/nodes/${nodeId}`)).status).to.equal(423);
      expect((await call<{ status: string }>(socket, 'GET', '/healthz')).body.status).to.equal('locked');
    });

    it('upgrades a data directory written by the previous release on its first start, then refuses what that format would have accepted', async () => {
      await cp(new URL('../fixtures/unkeyed-store/keyfile/data', import.meta.url).pathname, data, { recursive: true });
      store = await start();
      expect(store.output()).to.contain('rewrote the data directory with a keyed log');
      const service = await call<{ constraints: string[] }>(socket, 'GET', '/v1/services/db');
      expect(service.body.constraints).to.deep.equal(['node.labels.zone==eu']);
      expect((await call<unknown[]>(socket, 'GET', '/v1/nodes')).body).to.deep.equal([]);
      expect((await call(socket, 'POST', '/v1/secrets', { name: 'after', data: 'b2s=' })).status).to.equal(201);
      await stopProcess(store);
      store = undefined;
      closeClients();
      const files = await readdir(data);
      for (const f of files.filter((f) => f.startsWith('wal-'))) expect((await readFile(join(data, f))).subarray(0, 8).toString(), f).to.equal('HUSHWAL2');

      store = await start();
      expect(store.output()).not.to.contain('rewrote the data directory');
      expect((await call<{ name: string }[]>(socket, 'GET', '/v1/secrets')).body.map((s) => s.name).sort()).to.deep.equal(['after', 'db_password']);
      await stopProcess(store);
      store = undefined;
      closeClients();
      const opened = await openStore({ dataDir: data });
      const nodeId = (await opened.backend.list('revoked/'))[0].key.slice('revoked/'.length);
      await opened.backend.close();
      const { wal, offset } = await forge(JSON.stringify(service.body), nodeId);
      expect(await startOutcome()).to.contain(`${wal}: record fails its authentication (written without this store's key, or damaged) at offset ${offset}`);
    });

    it('autolock: kill -9 during writes and a torn last record never make it refuse; every acknowledged write is there', async () => {
      store = await start(['--autolock']);
      const keyFile = join(dir, 'unlock-key');
      await writeFile(keyFile, unlockKeyOf(store), { mode: 0o600 });
      const acknowledged: string[] = [];
      let next = 0;
      const client = async () => {
        while (next < 200) {
          const name = `s${next++}`;
          if (next === 100) store!.child.kill('SIGKILL');
          const reply = await call(socket, 'POST', '/v1/secrets', { name, data: 'dmFsdWU=' }).catch(() => undefined);
          if (reply?.status === 201) acknowledged.push(name);
        }
      };
      await Promise.all(Array.from({ length: 16 }, client));
      await store.exited;
      closeClients();
      expect(acknowledged.length).to.be.greaterThan(50);
      // And a write torn mid-record on top: the first 30 bytes of a copy of the last record.
      const wal = await lastSegment(data);
      const { records } = await readRecords(wal);
      const last = (await readFile(wal)).subarray(records.at(-1)!.offset, records.at(-1)!.offset + 30);
      await appendFile(wal, last);

      store = await start(['--autolock', '--unlock-key-file', keyFile]);
      expect(store.output()).to.contain('cut off a torn tail');
      expect((await call<{ status: string }>(socket, 'GET', '/healthz')).body.status).to.equal('ok');
      const listed = new Set((await call<{ name: string }[]>(socket, 'GET', '/v1/secrets')).body.map((s) => s.name));
      for (const name of acknowledged) expect(listed.has(name), name).to.equal(true);
    });

    it('refuses at once a keyring that asks Argon2id for absurd costs', async () => {
      store = await start(['--autolock']);
      await stopProcess(store, 'SIGKILL');
      store = undefined;
      const wal = await lastSegment(data);
      const stored = JSON.parse((await readFile(wal)).toString('latin1').match(/\{"format":1,"root":"argon2id".*?\}/)![0]) as Record<string, unknown>;
      const offset = await appendUnkeyedCommit(wal, [{ type: 'put', key: 'meta/keyring', value: JSON.stringify({ ...stored, opslimit: 4294967295, memlimit: 4294967295 }) }]);
      const outcome = await startOutcome(['--autolock']);
      expect(outcome).to.match(/store exited during start-up/);
      expect(outcome).to.contain(`${wal}: keyring record asks Argon2id for opslimit 4294967295 (accepted: 1 to 3)`);
      expect(outcome).to.contain(`at offset ${offset}; refusing to start`);
    });
  });
});
