/**
 * High availability on a real etcd: 3 etcd members on loopback ports, 2
 * `hush store --backend etcd` replicas sharing them, and `hush agent`
 * processes given both replicas. Real processes, real kill -9, real FUSE
 * mounts read by this process (never by the agent that serves them).
 *
 * Each test gets its own etcd prefix and its own replicas; the etcd cluster
 * is shared, and a test that kills members starts them again in `finally`.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Etcd3 } from 'etcd3';
import { freePort, startAgentProcess, type AgentProcess } from '../helpers/agent-process.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js';
import { call, closeClients, type ErrorBody } from '../helpers/http.js';
import { hush, hushOk, startStoreProcess, stopProcess, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

interface Replica {
  name: string;
  data: string;
  socket: string;
  home: string;
  port: number;
  process?: StoreProcess;
}

interface Held {
  secrets: { name: string; version: number }[];
}

describe('store HA: two replicas on a 3-member etcd cluster, agents failing over', function () {
  this.timeout(240_000);
  let etcd: EtcdCluster;
  let dir: string;
  let prefix: string;
  let replicas: Replica[];
  const agents: AgentProcess[] = [];

  before(async () => {
    etcd = await startEtcdCluster(3);
  });
  after(async () => etcd?.stop());

  const storeArgs = (r: Replica) => [
    '--backend', 'etcd',
    '--etcd-endpoints', etcd.endpoints.join(','),
    '--etcd-prefix', prefix,
    '--replica-id', r.name,
    '--listen', `127.0.0.1:${r.port}`,
    '--admin', '',
    // Quick "down" judgement for node ls after a kill (the store tells agents the period).
    '--heartbeat-period', '500',
    // A dead leader's election lease runs out after 2 s (default 10).
    '--leader-lease', '2',
  ];
  const startReplica = async (r: Replica) => {
    r.process = await startStoreProcess({ data: r.data, socket: r.socket, home: r.home, extraArgs: storeArgs(r) });
  };
  const cli = (r: Replica, args: string[], input?: string) => hushOk(args, { env: { HUSH_HOST: `unix://${r.socket}`, HUSH_HOME: r.home }, input }).stdout.trim();
  const storeList = (r: Replica) => [r, ...replicas.filter((x) => x !== r)].map((x) => `127.0.0.1:${x.port}`).join(',');
  /** An agent that prefers replica `r` (listed first) and knows the other. */
  const agentOn = async (r: Replica, name: string, token: string) => {
    const a = await startAgentProcess({ store: storeList(r), token, name, socket: join(dir, `${name}.sock`) });
    agents.push(a);
    return a;
  };
  const held = async (a: AgentProcess) => (await call<Held>(a.socket, 'GET', '/v1/debug/held')).body;
  const versionHeld = async (a: AgentProcess, name: string) => (await held(a)).secrets.find((s) => s.name === name)?.version;
  const createSecret = (r: Replica, name: string, value: string) => call<{ version: number } & ErrorBody>(r.socket, 'POST', '/v1/secrets', { name, data: Buffer.from(value).toString('base64') });
  const rotateSecret = (r: Replica, name: string, value: string) => call<{ version: number } & ErrorBody>(r.socket, 'POST', `/v1/secrets/${name}/rotate`, { data: Buffer.from(value).toString('base64') });
  const startContainer = async (a: AgentProcess, id: string, service: string) => {
    const reply = await call<{ mount: string }>(a.socket, 'POST', '/v1/containers', { id, service });
    expect(reply.status, reply.text).to.equal(201);
    return reply.body.mount;
  };

  beforeEach(async () => {
    dir = await tempDir('hush-etcd-ha-');
    prefix = `ha-${randomBytes(4).toString('hex')}/`;
    replicas = [];
    for (const name of ['a', 'b']) replicas.push({ name, data: join(dir, `${name}-data`), socket: join(dir, `${name}.sock`), home: join(dir, `${name}-home`), port: await freePort() });
    const [a, b] = replicas as [Replica, Replica];
    await startReplica(a);
    // Every replica must decrypt: the second gets the first one's key file.
    await copyFile(join(a.data, 'master.key'), join(await ensureDir(b.data), 'master.key'));
    await startReplica(b);
  });
  afterEach(async () => {
    closeClients();
    for (const a of agents.splice(0)) await a.stop('SIGKILL');
    for (const r of replicas) if (r.process) await stopProcess(r.process, 'SIGKILL');
    await removeDir(dir);
  });

  it('shows writes through either replica through both, pushes a rotation made through A to an agent on B, and node ls tells each node\'s replica', async () => {
    const [a, b] = replicas as [Replica, Replica];
    // One CA and one join token for both replicas (kept in etcd): a token from A joins through B.
    expect(cli(b, ['join-token'])).to.equal(cli(a, ['join-token']));
    const token = cli(a, ['join-token']);
    cli(a, ['secret', 'create', 'db_password', '-'], 'first value');
    cli(b, ['secret', 'create', 'api_key', '-'], 'second value');
    for (const r of replicas) expect(JSON.parse(cli(r, ['secret', 'ls', '--format', 'json'])).map((s: { name: string }) => s.name).sort()).to.deep.equal(['api_key', 'db_password']);
    cli(b, ['service', 'create', 'web', '--secret', 'db_password,target=db', '--secret', 'api_key,target=key']);
    expect(JSON.parse(cli(a, ['service', 'inspect', 'web']))[0].name).to.equal('web');

    const onA = await agentOn(a, 'node-a', token);
    const onB = await agentOn(b, 'node-b', token);
    const mountA = await startContainer(onA, 'c-a', 'web');
    const mountB = await startContainer(onB, 'c-b', 'web');
    expect(await readFile(join(mountB, 'db'), 'utf8')).to.equal('first value');

    // A rotation through A reaches the agent connected to B (B learns it from etcd's watch).
    cli(a, ['secret', 'rotate', 'db_password', '-'], 'rotated through A');
    await until(async () => (await versionHeld(onB, 'db_password')) === 2, 'the rotation on the agent connected to B');
    expect(await readFile(join(mountB, 'db'), 'utf8')).to.equal('rotated through A');
    expect(await readFile(join(mountA, 'db'), 'utf8')).to.equal('rotated through A');

    // Either replica knows where a version has arrived, also on the nodes the other serves (acks are shared through etcd):
    // `--wait` through A returns once the agent on B acked, and each replica's propagation view names both nodes.
    const waited = hush(['secret', 'rotate', 'db_password', '-', '--wait', '--timeout', '30'], { env: { HUSH_HOST: `unix://${a.socket}`, HUSH_HOME: a.home }, input: 'third value' });
    expect(waited.status, waited.stderr).to.equal(0);
    expect(await versionHeld(onB, 'db_password'), 'B\'s agent holds it once --wait through A returned').to.equal(3);
    for (const r of replicas) {
      const view = await call<{ complete: boolean; nodes: { name: string; version: number }[] }>(r.socket, 'GET', '/v1/secrets/db_password/propagation?version=3');
      expect(view.body.complete, `complete through ${r.name}`).to.equal(true);
      expect(view.body.nodes.map((n) => `${n.name}@${n.version}`).sort()).to.deep.equal(['node-a@3', 'node-b@3']);
    }

    // Either replica lists every node, with the replica its session is on.
    for (const r of replicas) {
      await until(() => {
        const nodes = JSON.parse(cli(r, ['node', 'ls', '--format', 'json'])) as { name: string; status: { state: string; replica?: string } }[];
        const seen = Object.fromEntries(nodes.map((n) => [n.name, `${n.status.state}@${n.status.replica}`]));
        return seen['node-a'] === 'ready@a' && seen['node-b'] === 'ready@b';
      }, `node ls through ${r.name} showing node-a on a and node-b on b`);
    }
    expect(cli(a, ['node', 'ls'])).to.match(/node-b\s+ready\s+b\s/);
  });

  it('after kill -9 of a replica during writes and rotations: its agents move to the other, no acknowledged write is lost, container reads never fail', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const token = cli(a, ['join-token']);
    cli(a, ['secret', 'create', 'db_password', '-'], 'v1');
    cli(a, ['service', 'create', 'web', '--secret', 'db_password,target=db']);
    const agentsOnA = [await agentOn(a, 'n1', token), await agentOn(a, 'n2', token)];
    const agentOnB = await agentOn(b, 'n3', token);
    const mounts = [];
    for (const [i, agent] of [...agentsOnA, agentOnB].entries()) mounts.push(await startContainer(agent, `c${i}`, 'web'));

    // Containers read all along: every read must succeed with one of the values written.
    let reading = true;
    const readFailures: string[] = [];
    let reads = 0;
    const readers = mounts.map(async (mount) => {
      while (reading) {
        try {
          const value = await readFile(join(mount, 'db'), 'utf8');
          if (!/^v\d+$/.test(value)) readFailures.push(`unexpected content ${JSON.stringify(value)}`);
          reads++;
        } catch (err) {
          readFailures.push((err as Error).message);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    });

    // Writers: new secrets through both replicas, rotations through both; remember what was acknowledged.
    const acknowledged = new Map<string, string>();
    let lastRotation = 1;
    let writing = true;
    let n = 0;
    const writer = async (index: number) => {
      while (writing) {
        const target = replicas[(n + index) % 2]!;
        const name = `w${n++}`;
        const reply = await createSecret(target, name, `value-${name}`).catch(() => undefined);
        if (reply?.status === 201) acknowledged.set(name, `value-${name}`);
        const rotated = await rotateSecret(target, 'db_password', `v${n + 1000}`).catch(() => undefined);
        if (rotated?.status === 201) lastRotation = Math.max(lastRotation, rotated.body.version);
      }
    };
    const writers = [0, 1, 2].map(writer);
    await until(() => acknowledged.size >= 15, '15 acknowledged writes before the kill');
    a.process!.child.kill('SIGKILL');
    await a.process!.exited;
    const beforeKill = acknowledged.size;
    await until(() => acknowledged.size >= beforeKill + 15, '15 more acknowledged writes after the kill (through b)');
    writing = false;
    await Promise.all(writers);

    // The agents of A are on B now, and hold the last acknowledged rotation.
    for (const agent of [...agentsOnA, agentOnB]) await until(async () => (await versionHeld(agent, 'db_password')) === lastRotation, `version ${lastRotation} on every agent`);
    await until(() => {
      const nodes = JSON.parse(cli(b, ['node', 'ls', '--format', 'json'])) as { name: string; status: { state: string; replica?: string } }[];
      return nodes.every((node) => node.status.state === 'ready' && node.status.replica === 'b');
    }, 'every node connected to b');
    reading = false;
    await Promise.all(readers);
    expect(readFailures, 'reads in containers').to.deep.equal([]);
    expect(reads).to.be.above(50);

    // Nothing acknowledged is lost: every secret is there, through the surviving replica and through a restarted A.
    await startReplica(a);
    for (const r of replicas) {
      const names = new Set((JSON.parse(cli(r, ['secret', 'ls', '--format', 'json'])) as { name: string }[]).map((s) => s.name));
      for (const name of acknowledged.keys()) expect(names.has(name), `acknowledged secret ${name} through ${r.name}`).to.equal(true);
      expect((JSON.parse(cli(r, ['secret', 'inspect', 'db_password'])) as { version: number }[])[0]!.version).to.be.at.least(lastRotation);
    }
  });

  it('an agent whose replica is killed resumes on the other from the revision it holds: only what changed is sent, and it ends holding exactly what it should', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const token = cli(a, ['join-token']);
    for (const name of ['keep', 'rotated', 'dropped']) cli(a, ['secret', 'create', name, '-'], `${name} v1`);
    cli(a, ['service', 'create', 'web', '--secret', 'keep', '--secret', 'rotated', '--secret', 'dropped']);
    const agent = await agentOn(a, 'n1', token);
    const mount = await startContainer(agent, 'c1', 'web');
    expect(await readFile(join(mount, 'rotated'), 'utf8')).to.equal('rotated v1');

    // The agent is held still while A dies and B changes things, so those changes can only reach it in how it resumes.
    process.kill(await agent.pid(), 'SIGSTOP');
    try {
      a.process!.child.kill('SIGKILL');
      await a.process!.exited;
      cli(b, ['secret', 'rotate', 'rotated', '-'], 'rotated v2');
      cli(b, ['service', 'update', 'web', '--secret-rm', 'dropped']);
    } finally {
      process.kill(await agent.pid(), 'SIGCONT');
    }
    await until(async () => (await versionHeld(agent, 'rotated')) === 2 && (await versionHeld(agent, 'dropped')) === undefined, 'the agent holding what changed through B');
    expect((await held(agent)).secrets.map((s) => [s.name, s.version])).to.deep.equal([
      ['keep', 1],
      ['rotated', 2],
    ]);
    expect(await readFile(join(mount, 'rotated'), 'utf8')).to.equal('rotated v2');
    expect(await readFile(join(mount, 'keep'), 'utf8')).to.equal('keep v1');
    expect((await readdir(mount)).sort()).to.deep.equal(['keep', 'rotated']);

    // What B sent, seen from outside: one resumed start as a delta, no snapshot, and one secret version (not the unchanged one).
    const metrics = (await call(b.socket, 'GET', '/metrics')).text;
    expect(metrics).to.match(/^hush_sessions_resumed_total\{kind="delta"\} 1$/m);
    expect(metrics).to.not.match(/^hush_sessions_resumed_total\{kind="snapshot"\} [1-9]/m);
    expect(metrics).to.match(/^hush_node_pushed_secret_versions_total 1$/m);
    expect(agent.output()).to.match(/"start":"resumed".*session with the store established|session with the store established.*"start":"resumed"/);
  });

  it('a KEK rotation through A reaches B (B writes under the new KEK, A and B read what either wrote); a CA rotation through A reaches B (its listener, its joins)', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const token = cli(a, ['join-token']);
    cli(a, ['secret', 'create', 'early', '-'], 'made before the KEK rotation');
    cli(a, ['service', 'create', 'web', '--secret', 'early']);
    const onA = await agentOn(a, 'n-a', token);
    const onB = await agentOn(b, 'n-b', token);
    const mountA = await startContainer(onA, 'c-a', 'web');
    const mountB = await startContainer(onB, 'c-b', 'web');

    // KEK: rotated through A, then at once (no waiting for B's watch) written through B.
    cli(a, ['key', 'rotate']);
    cli(b, ['secret', 'create', 'late', '-'], 'made through B after the KEK rotation');
    cli(b, ['secret', 'rotate', 'early', '-'], 'rotated through B after the KEK rotation');
    cli(b, ['service', 'update', 'web', '--secret-add', 'late']);
    // Each agent's values come from its own replica: A opens what B sealed, B opens the re-wrapped and its own.
    for (const [mount, where] of [
      [mountA, 'A'],
      [mountB, 'B'],
    ] as const) {
      await until(async () => (await readFile(join(mount, 'late'), 'utf8').catch(() => '')) === 'made through B after the KEK rotation', `the secret made through B, read through ${where}`);
      await until(async () => (await readFile(join(mount, 'early'), 'utf8')) === 'rotated through B after the KEK rotation', `the rotation made through B, read through ${where}`);
    }
    await until(() => /reloaded the keyring/.test(b.process!.output()), 'B saying it reloaded the keyring');

    // CA: rotated through A. B's node listener then presents a chain that verifies against the new CA alone.
    const oldCa = JSON.parse(cli(a, ['ca', 'status', '--format', 'json'])).fingerprint as string;
    cli(a, ['ca', 'rotate']);
    const newCa = JSON.parse(cli(a, ['ca', 'status', '--format', 'json'])).fingerprint as string;
    expect(newCa).to.not.equal(oldCa);
    const newCaPem = await readFile(join(a.home, 'ca.pem'), 'utf8');
    await until(() => chainVerifies(b.port, newCaPem), "B's node listener presenting a chain of the new CA");
    expect(JSON.parse(cli(b, ['ca', 'status', '--format', 'json'])).fingerprint).to.equal(newCa);
    await until(() => cli(b, ['join-token']) === cli(a, ['join-token']), 'B handing out the join token of the new CA');

    // An agent joining through B (only B) with the new CA's token gets a certificate of the new CA.
    const late = await startAgentProcess({ store: `127.0.0.1:${b.port}`, token: cli(b, ['join-token']), name: 'n-late', socket: join(dir, 'n-late.sock') });
    agents.push(late);
    const status = (await call<{ certificate: { ca: string } }>(late.socket, 'GET', '/v1/status')).body;
    expect(status.certificate.ca).to.equal(newCa);
    const mountLate = await startContainer(late, 'c-late', 'web');
    expect(await readFile(join(mountLate, 'late'), 'utf8')).to.equal('made through B after the KEK rotation');
    // Recorded as moved to the new CA, seen through either replica.
    for (const r of replicas) {
      const rotation = JSON.parse(cli(r, ['ca', 'status', '--format', 'json'])).rotation as { nodes: { name: string; moved: boolean }[] };
      expect(rotation.nodes.find((n) => n.name === 'n-late')?.moved, `n-late moved, through ${r.name}`).to.equal(true);
    }
    // The agents already connected keep their sessions and their reads.
    expect(await readFile(join(mountB, 'early'), 'utf8')).to.equal('rotated through B after the KEK rotation');
  });

  it('keeps serving when one etcd member dies; with two dead, writes fail with a clear 503 while agents serve their cache; recovers when they return', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const token = cli(a, ['join-token']);
    cli(a, ['secret', 'create', 'db_password', '-'], 'before');
    cli(a, ['service', 'create', 'web', '--secret', 'db_password,target=db']);
    const onB = await agentOn(b, 'n1', token);
    const mount = await startContainer(onB, 'c1', 'web');
    try {
      await etcd.kill(0);
      // One member down: quorum holds. If it was the leader, writes in flight during the election (~1 s here)
      // fail with a 503 (etcd cannot say whether they were applied); once a leader is elected every write succeeds.
      let attempt = 0;
      // A new name each attempt: a write answered 503 may still have been applied.
      await until(async () => (await createSecret(a, `one_down_try_${attempt++}`, 'x')).status === 201, 'a write with one member down', 30_000, 100);
      for (let i = 0; i < 10; i++) {
        const reply = await createSecret(replicas[i % 2]!, `one_down_${i}`, 'x');
        expect(reply.status, reply.text).to.equal(201);
      }
      expect((await rotateSecret(b, 'db_password', 'one down')).status).to.equal(201);
      await until(async () => (await readFile(join(mount, 'db'), 'utf8')) === 'one down', 'the rotation made with one member down');

      await etcd.kill(1);
      const refused = await createSecret(a, 'two_down', 'x');
      expect(refused.status, refused.text).to.equal(503);
      expect(refused.body.error.code).to.equal('unavailable');
      expect(refused.body.error.message).to.match(/etcd did not complete the request.*majority of its members/);
      // The agent keeps serving what it holds.
      for (let i = 0; i < 5; i++) expect(await readFile(join(mount, 'db'), 'utf8')).to.equal('one down');

      await etcd.start(0);
      await etcd.start(1);
      await until(async () => (await createSecret(a, 'recovered', 'x').catch(() => undefined))?.status === 201, 'a write after the members returned', 60_000, 500);
      // While the returned members catch up, a request can still meet a 503 (etcd's client re-trying members it saw fail); a client retries.
      await until(async () => (await rotateSecret(a, 'db_password', 'recovered')).status === 201, 'a rotation after recovery', 30_000, 200);
      await until(async () => (await readFile(join(mount, 'db'), 'utf8')) === 'recovered', 'a rotation after recovery reaching the agent on b', 30_000);
    } catch (err) {
      // What CI shows of the processes when this fails.
      console.log(`--- replica b ---\n${b.process!.output()}\n--- replica a ---\n${a.process!.output()}\n--- agent ---\n${onB.output()}`);
      throw err;
    } finally {
      for (const [i, member] of etcd.members.entries()) if (member.child?.exitCode !== null || member.child?.signalCode !== null) await etcd.start(i).catch(() => undefined);
    }
  });

  it('elects exactly one replica to run the singleton jobs; after kill -9 of it, the other takes over once the lease expires and runs the schedules, one version per due time', async () => {
    const elected = (r: Replica) => (r.process!.output().match(/now runs the singleton jobs/g) ?? []).length;
    await until(() => elected(replicas[0]!) + elected(replicas[1]!) === 1, 'one replica elected');
    const leader = elected(replicas[0]!) === 1 ? replicas[0]! : replicas[1]!;
    const other = replicas.find((r) => r !== leader)!;
    // Still one, a while later: the other is waiting, not elected too.
    await new Promise((r) => setTimeout(r, 1500));
    expect(elected(other)).to.equal(0);

    // A schedule made through the replica that is not running the jobs: the leader runs it.
    cli(other, ['secret', 'create', 'scheduled_pw', '-'], 'first');
    cli(other, ['secret', 'rotate', 'scheduled_pw', '--every', '2s', '--generate', '16']);
    const scheduledAt = () =>
      (JSON.parse(cli(other, ['secret', 'versions', 'scheduled_pw', '--format', 'json'])) as { createdAt: string; origin?: string }[])
        .filter((v) => v.origin === 'schedule')
        .map((v) => Date.parse(v.createdAt))
        .sort((x, y) => x - y);
    await until(() => scheduledAt().length >= 2, 'two scheduled rotations run by the leader', 20_000);

    leader.process!.child.kill('SIGKILL');
    await leader.process!.exited;
    const killedAt = Date.now();
    await until(() => elected(other) === 1, 'the other replica elected after the lease expired', 20_000);
    await until(() => scheduledAt().filter((t) => t > killedAt).length >= 2, 'two scheduled rotations run by the new leader', 20_000);
    // Each run sets the next due time one period (2 s) after it: two versions closer than that are one due time run twice.
    const times = scheduledAt();
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!, `scheduled versions ${i} and ${i + 1} apart (ms)`).to.be.at.least(1000);
    cli(other, ['secret', 'rotate', 'scheduled_pw', '--every', 'off']);
  });

  it('refuses loudly a record written into etcd without the store\'s key', async () => {
    const [a, b] = replicas as [Replica, Replica];
    cli(a, ['secret', 'create', 'db_password', '-'], 'genuine');
    cli(a, ['service', 'create', 'web', '--secret', 'db_password,target=db']);
    const client = new Etcd3({ hosts: etcd.endpoints });
    try {
      // Someone with etcd write access, but not the key, edits the service's grant.
      const service = await client.get(`${prefix}services/web`).buffer();
      expect(service).to.not.equal(null);
      const edited = Buffer.from(service!);
      const json = edited.subarray(33).toString('utf8').replace('"db"', '"xx"');
      await client.put(`${prefix}services/web`).value(Buffer.concat([edited.subarray(0, 33), Buffer.from(json)]));
      // A value moved from another key (with its valid tag for that key) is refused too.
      await client.put(`${prefix}services/copy`).value(service!);
    } finally {
      client.close();
    }
    for (const r of [a, b]) {
      const result = hush(['service', 'inspect', 'web'], { env: { HUSH_HOST: `unix://${r.socket}`, HUSH_HOME: r.home } });
      expect(result.status).to.equal(1);
      expect(result.stderr).to.match(new RegExp(`etcd key ${prefix}services/web fails its authentication`));
      const listed = hush(['service', 'ls'], { env: { HUSH_HOST: `unix://${r.socket}`, HUSH_HOME: r.home } });
      expect(listed.status).to.equal(1);
      expect(listed.stderr).to.match(/fails its authentication/);
    }
    await until(() => /fails its authentication/.test(b.process!.output()), 'the refusal in the log of replica b (its watch saw the edit)');
  });

  it('leaves no secret value in etcd\'s data directories (and the search finds a value etcd does hold in clear)', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const values = Array.from({ length: 4 }, (_, i) => `needle-${i}-${randomBytes(12).toString('hex')}`);
    cli(a, ['secret', 'create', 's0', '-'], values[0]!);
    cli(b, ['secret', 'create', 's1', '-'], values[1]!);
    cli(a, ['secret', 'rotate', 's0', '-'], values[2]!);
    cli(b, ['secret', 'rotate', 's1', '-'], values[3]!);
    // Positive control: a value put into etcd in clear is found by the same search.
    const control = `control-${randomBytes(12).toString('hex')}`;
    const client = new Etcd3({ hosts: etcd.endpoints });
    try {
      await client.put(`${prefix}control`).value(control);
    } finally {
      client.close();
    }
    const grep = (needle: string) => spawnSync('grep', ['-r', '-l', '-a', '-F', needle, ...etcd.members.map((m) => m.dataDir)], { encoding: 'utf8' });
    // etcd writes its WAL at once (fsync per raft batch): the control is there as soon as the put is acknowledged.
    await until(() => grep(control).stdout.trim() !== '', 'the clear control value in etcd\'s data directory');
    for (const value of values) {
      const found = grep(value);
      expect(found.status, `grep for a secret value: ${found.stdout}${found.stderr}`).to.equal(1);
      const b64 = Buffer.from(value).toString('base64');
      expect(grep(b64.slice(0, 20)).status, 'base64 of a secret value').to.equal(1);
    }
    expect((await readdir(etcd.members[0]!.dataDir)).length).to.be.above(0);
  });
});

/** Whether the node listener on `port` presents a chain that verifies against `caPem` alone (under the store's TLS name). */
function chainVerifies(port: number, caPem: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: caPem, servername: 'hush-store', ALPNProtocols: ['h2'] });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('secureConnect', () => done(socket.authorized));
    socket.once('error', () => done(false));
  });
}

async function ensureDir(path: string): Promise<string> {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(path, { recursive: true, mode: 0o700 });
  return path;
}
