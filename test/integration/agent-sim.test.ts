/**
 * The agent simulator that bench/propagation.ts and bench/reconnect.ts scale
 * up, kept from rotting: a real store process, 12 simulated agents in one worker
 * process (each joined with the token, its own certificate and TLS
 * connection, the agent's own session code), half of them running a service
 * granted the secret and half one that is not. One rotation: every entitled
 * agent receives and acks the new version, and the store's propagation view
 * names exactly them; the others receive no message at all. Bytes are
 * counted through each agent's relay, so the relay is exercised too.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { SimFleet } from '../../bench/lib/sim-fleet.js';
import { freePort } from '../helpers/agent-process.js';
import { call, closeClients } from '../helpers/http.js';
import { hush, startStoreProcess, stopProcess, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

interface Propagation {
  version: number;
  complete: boolean;
  nodes: { node: string; name?: string; version?: number; ackedAt?: string }[];
}

const AGENTS = 12;

describe('agent simulator (store process, 12 simulated agents in a worker process)', function () {
  this.timeout(120_000);
  let dir: string;
  let socket: string;
  let store: StoreProcess | undefined;
  let fleet: SimFleet | undefined;

  before(async () => {
    dir = await tempDir('hush-agent-sim-');
    socket = join(dir, 'admin.sock');
  });
  after(async () => {
    closeClients();
    await fleet?.stop();
    if (store) await stopProcess(store, 'SIGKILL');
    await removeDir(dir);
  });

  it('every entitled agent receives and acks a rotation, the store sees exactly them, the others get nothing', async () => {
    const port = await freePort();
    const target = `127.0.0.1:${port}`;
    store = await startStoreProcess({ data: join(dir, 'data'), socket, home: dir, logLevel: 'warn', extraArgs: ['--listen', target, '--admin', ''] });
    const admin = async <T>(method: string, path: string, body?: unknown) => {
      const reply = await call<T>(socket, method, path, body);
      if (reply.status >= 300) throw new Error(`${method} ${path}: ${reply.status} ${reply.text}`);
      return reply.body;
    };
    await admin('POST', '/v1/secrets', { name: 'rotated', data: Buffer.from('one').toString('base64') });
    await admin('POST', '/v1/secrets', { name: 'elsewhere', data: Buffer.from('other').toString('base64') });
    await admin('POST', '/v1/services', { name: 'entitled', grants: [{ source: 'rotated' }] });
    await admin('POST', '/v1/services', { name: 'unrelated', grants: [{ source: 'elsewhere' }] });
    const token = hush(['join-token'], { env: { HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir } }).stdout.trim();

    fleet = await SimFleet.start(1);
    const names = Array.from({ length: AGENTS }, (_, i) => `sim-${String(i).padStart(2, '0')}`);
    await fleet.join(target, token, names);
    const entitled = names.filter((_, i) => i % 2 === 0);
    await fleet.connect(
      target,
      names.map((name, i) => ({ name, service: i % 2 === 0 ? 'entitled' : 'unrelated' })),
      { watch: ['rotated'], countBytes: true },
    );
    expect(await fleet.ready()).to.equal(AGENTS);
    const propagation = (version: number) => admin<Propagation>('GET', `/v1/secrets/rotated/propagation?version=${version}`);
    await until(async () => (await propagation(1)).complete && (await propagation(1)).nodes.length === entitled.length, 'version 1 on every entitled agent');

    await fleet.mark();
    const rotated = await call<{ version: number }>(socket, 'POST', '/v1/secrets/rotated/rotate', { data: Buffer.from('two').toString('base64') });
    expect(rotated.status, rotated.text).to.equal(201);
    expect(rotated.body.version).to.equal(2);
    await until(async () => (await fleet!.acked('rotated', 2)) === entitled.length, 'every entitled agent to ack version 2');
    await until(async () => (await propagation(2)).complete, 'the store to record every ack of version 2');

    const view = await propagation(2);
    expect(view.nodes.map((n) => n.name).sort()).to.deep.equal(entitled);
    expect(view.nodes.every((n) => n.version === 2 && n.ackedAt !== undefined)).to.equal(true);

    const records = await fleet.collect();
    expect(records).to.have.length(AGENTS);
    for (const r of records) {
      expect(r.state, r.name).to.equal('ready');
      if (entitled.includes(r.name)) {
        const got = r.got['rotated@2'];
        expect(got?.ackedAt, `${r.name} acked version 2`).to.be.a('number');
        expect(got!.ackedAt!).to.be.at.least(got!.receivedAt);
        expect(r.bytesToAgentSinceMark, `${r.name} bytes on the wire`).to.be.above(0);
      } else {
        expect(Object.keys(r.got), `${r.name} holds nothing of the rotated secret`).to.deep.equal([]);
        expect(r.messagesSinceMark, `${r.name} messages since the rotation`).to.equal(0);
      }
    }
  });
});
