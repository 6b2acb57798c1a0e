/**
 * The store as a real process on a real disk: crash with kill -9, restart,
 * check that every acknowledged write is there and decrypts byte-identical.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.js';
import { call, closeClients } from '../helpers/http.js';
import { hush, startStoreProcess, stopProcess, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

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
    const files = await readdir(data);
    const everything = Buffer.concat(await Promise.all(files.map((f) => readFile(join(data, f)))));
    for (const value of values.values()) {
      expect(everything.includes(value.subarray(0, 20))).to.equal(false);
      expect(everything.includes(Buffer.from(value.toString('base64').slice(0, 24)))).to.equal(false);
    }
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
    expect(key, 'unlock key printed at first start').to.be.a('string');
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
});
