/**
 * The heartbeat period is the store's: it sends it at the start of each
 * session, the agent beats at it, and the store judges "down" from it. A
 * real store started with a period far from the 5 s default, and a real
 * agent process: beats must arrive at the store's period (seen in the node's
 * lastHeartbeat), and a frozen agent (SIGSTOP, connection still open) must be
 * called down after a few missed beats, not after the default's 15 s.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startAgentProcess, type AgentProcess } from '../helpers/agent-process.js';
import { call, closeClients } from '../helpers/http.js';
import { hush, startStoreProcess, stopProcess, type StoreProcess } from '../helpers/hush-process.js';
import { until } from '../helpers/until.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

interface NodeJson {
  status: { state: string; lastHeartbeat?: string };
}

/** 25 times faster than the default (5000 ms), so the default cannot pass for it. */
const PERIOD_MS = 200;

describe('heartbeat period sent by the store (store and agent processes)', function () {
  this.timeout(60_000);
  let dir: string;
  let socket: string;
  let store: StoreProcess | undefined;
  let agent: AgentProcess | undefined;

  beforeEach(async () => {
    dir = await tempDir('hush-heartbeat-');
    socket = join(dir, 'admin.sock');
  });
  afterEach(async () => {
    closeClients();
    if (agent) {
      agent.child.kill('SIGCONT');
      await agent.stop('SIGKILL');
    }
    agent = undefined;
    if (store) await stopProcess(store, 'SIGKILL');
    store = undefined;
    await removeDir(dir);
  });

  const nodeStatus = async (name: string) => {
    const reply = await call<NodeJson>(socket, 'GET', `/v1/nodes/${name}`);
    expect(reply.status, reply.text).to.equal(200);
    return reply.body.status;
  };

  it('the agent beats at the period the store set, and the store calls a frozen agent down after three missed beats', async () => {
    const port = await freePort();
    store = await startStoreProcess({ data: join(dir, 'data'), socket, home: dir, extraArgs: ['--listen', `127.0.0.1:${port}`, '--admin', '', '--heartbeat-period', String(PERIOD_MS)] });
    const token = hush(['join-token'], { env: { HUSH_HOST: `unix://${socket}`, HUSH_HOME: dir } }).stdout.trim();
    agent = await startAgentProcess({ store: `127.0.0.1:${port}`, token, name: 'beater', socket: join(dir, 'agent.sock') });

    // Nothing else is sent on an idle session, so each new lastHeartbeat is a beat. Six distinct
    // values take ~1 s at 200 ms; at the default period they would take 25 s, past the timeout.
    const seen = new Set<string>();
    await until(async () => {
      const { lastHeartbeat } = await nodeStatus('beater');
      if (lastHeartbeat) seen.add(lastHeartbeat);
      return seen.size >= 6;
    }, `six heartbeats at a ${PERIOD_MS} ms period`, 5_000);
    expect((await nodeStatus('beater')).state).to.equal('ready');

    // Frozen, its connection open: down once three periods pass without a beat (the default would take 15 s).
    agent.child.kill('SIGSTOP');
    await until(async () => (await nodeStatus('beater')).state === 'down', 'the frozen node to be down', 5_000);
    agent.child.kill('SIGCONT');
    await until(async () => (await nodeStatus('beater')).state === 'ready', 'the resumed node to be ready again', 5_000);
  });

  it('refuses a heartbeat period out of range and creates nothing', async () => {
    for (const period of ['50', '60001']) {
      const data = join(dir, `data-${period}`);
      const result = hush(['store', '--data', data, '--socket', join(dir, `s-${period}.sock`), '--home', dir, '--heartbeat-period', period]);
      expect(result.status, result.stderr).to.equal(1);
      expect(result.stderr).to.match(/^error: heartbeat period must be 100 to 60000 ms, not \d+\n$/);
      expect(existsSync(data), `${data} created`).to.equal(false);
    }
    const notANumber = hush(['store', '--data', join(dir, 'data-x'), '--heartbeat-period', 'soon']);
    expect(notANumber.status, notANumber.stderr).to.equal(2);
  });
});
