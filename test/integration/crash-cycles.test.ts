/**
 * Crash safety of the store under mixed load, on each backend: each cycle
 * starts the store on the same data directory (embedded) or the same etcd
 * prefix (etcd: one real etcd member), runs concurrent creates, rotations,
 * service creates and updates, and compose deploys (POST /v1/deploy, one
 * transaction each), and kills it with SIGKILL at a random
 * moment. On etcd, every third cycle (the 2nd, 5th, ...) also kills the etcd member
 * with SIGKILL at the same moment and starts it again: what etcd
 * acknowledged to the store must have been on its disk. Every start must
 * succeed, and at the end every acknowledged write must be there, read by
 * opening the backend directly: each acknowledged secret version decrypts to
 * the bytes sent (unless retention pruned it), each acknowledged service and
 * constraint is present.
 *
 * HUSH_CHAOS_CYCLES sets the embedded cycles (10 in `npm test`, 100 in
 * `npm run test:chaos`), HUSH_CHAOS_ETCD_CYCLES the etcd ones (3 in
 * `npm test`; HUSH_CHAOS_CYCLES when that is set); HUSH_CHAOS_SEED replays
 * the kill timings and the choice of operations.
 */
import { expect } from 'chai';
import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import { DEFAULT_KEEP_VERSIONS } from '../../src/rotation/index.js';
import { openStore, type EtcdOptions } from '../../src/store/index.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js';
import { call, closeClients } from '../helpers/http.js';
import { startStoreProcess, stopProcess, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const CYCLES = Number(process.env.HUSH_CHAOS_CYCLES ?? 10);
const ETCD_CYCLES = Number(process.env.HUSH_CHAOS_ETCD_CYCLES ?? (process.env.HUSH_CHAOS_CYCLES ? CYCLES : 3));
const SEED = Number(process.env.HUSH_CHAOS_SEED ?? randomInt(2 ** 31));
const WORKERS = 8;
/** Acknowledged writes each cycle waits for before its kill timer starts. */
const MIN_ACKS_PER_CYCLE = 5;

/** A seeded generator (mulberry32): the same seed gives the same kill points and operations. */
function generator(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

describe('store kill -9 cycles under concurrent mixed writes (integration)', function () {
  this.timeout(Math.max(180_000, (CYCLES + ETCD_CYCLES) * 20_000));
  let dir: string;
  let store: StoreProcess | undefined;
  let etcd: EtcdCluster | undefined;

  beforeEach(async () => {
    dir = await tempDir('hush-chaos-');
  });
  afterEach(async () => {
    closeClients();
    if (store) await stopProcess(store, 'SIGKILL');
    store = undefined;
    await etcd?.stop();
    etcd = undefined;
    await removeDir(dir);
  });

  it(`embedded backend: loses no acknowledged write and never refuses to start across ${CYCLES} cycles`, async () => {
    await crashCycles('embedded', CYCLES);
  });

  it(`etcd backend (one member, itself killed in some cycles): loses no acknowledged write and never refuses to start across ${ETCD_CYCLES} cycles`, async () => {
    etcd = await startEtcdCluster(1);
    await crashCycles('etcd', ETCD_CYCLES);
  });

  async function crashCycles(backend: 'embedded' | 'etcd', cycles: number): Promise<void> {
    const int = generator(SEED);
    const etcdOptions: EtcdOptions | undefined = etcd ? { endpoints: etcd.endpoints, prefix: `chaos-${randomBytes(4).toString('hex')}/` } : undefined;
    // --leader-lease 2: a killed store's leadership lease runs out in 2 s (default 10), so the next start is not held up by it.
    const backendArgs = etcdOptions ? ['--backend', 'etcd', '--etcd-endpoints', etcdOptions.endpoints.join(','), '--etcd-prefix', etcdOptions.prefix!, '--leader-lease', '2'] : [];
    const storeArgs = ['--listen', '127.0.0.1:0', '--admin', '', ...backendArgs];
    let etcdKills = 0;
    const data = join(dir, 'data');
    const socket = join(dir, 'admin.sock');
    /** name -> version -> value, for acknowledged creates and rotations. */
    const versions = new Map<string, Map<number, Buffer>>();
    /** service -> constraints acknowledged (services are only ever added to). */
    const services = new Map<string, Set<string>>();
    /** Services made by acknowledged deploys (their constraints are the plan's, so constraint updates leave them alone). */
    const deployed = new Set<string>();
    let deploys = 0;
    let acknowledged = 0;
    let attempted = 0;
    /** Concurrent changes to one object that outlasted the store's retries: a 409 "try again", not acknowledged. */
    let conflicts = 0;
    let nextName = 0;
    const where = (cycle: number) => `${backend} backend, seed ${SEED} (HUSH_CHAOS_SEED replays it), cycle ${cycle}`;

    const operation = async (): Promise<void> => {
      const names = [...versions.keys()];
      const kind = names.length === 0 ? 0 : int(5);
      attempted++;
      if (kind === 0 || (kind === 2 && services.size > 50)) {
        const name = `s${nextName++}`;
        const value = randomBytes(32);
        const reply = await call<{ version: number }>(socket, 'POST', '/v1/secrets', { name, data: value.toString('base64') });
        if (reply.status !== 201) throw new Error(`create ${name}: ${reply.status} ${reply.text}`);
        versions.set(name, new Map([[reply.body.version, value]]));
      } else if (kind === 1) {
        const name = names[int(names.length)]!;
        const value = randomBytes(32);
        const reply = await call<{ version: number }>(socket, 'POST', `/v1/secrets/${name}/rotate`, { data: value.toString('base64') });
        if (reply.status === 409) return void conflicts++;
        if (reply.status !== 201) throw new Error(`rotate ${name}: ${reply.status} ${reply.text}`);
        versions.get(name)!.set(reply.body.version, value);
      } else if (kind === 2) {
        const name = `svc${services.size}-${int(1e6)}`;
        const reply = await call(socket, 'POST', '/v1/services', { name, grants: [{ source: names[int(names.length)]! }] });
        if (reply.status === 409) return void conflicts++;
        if (reply.status !== 201) throw new Error(`service create ${name}: ${reply.status} ${reply.text}`);
        services.set(name, new Set());
      } else if (kind === 4) {
        // A compose deploy of one of three projects: two secrets with new values and a service granted both, in one transaction.
        const project = `p${int(3)}`;
        const values = [randomBytes(32), randomBytes(32)];
        const secrets = values.map((value, i) => ({ key: `k${i}`, name: `${project}_k${i}`, external: false, labels: {}, data: value.toString('base64') }));
        const service = { name: `${project}_app`, grants: secrets.map((s) => ({ source: s.name, target: s.key })), constraints: [] };
        const reply = await call<{ actions: { kind: string; name: string; version?: number }[] }>(socket, 'POST', '/v1/deploy', { project, secrets, services: [service] });
        if (reply.status === 409) return void conflicts++;
        if (reply.status !== 200) throw new Error(`deploy ${project}: ${reply.status} ${reply.text}`);
        for (const action of reply.body.actions) {
          const i = secrets.findIndex((s) => s.name === action.name);
          if (action.kind !== 'secret' || i < 0 || action.version === undefined) continue;
          if (!versions.has(action.name)) versions.set(action.name, new Map());
          versions.get(action.name)!.set(action.version, values[i]!);
        }
        deployed.add(service.name);
        deploys++;
      } else {
        const all = [...services.keys()];
        if (all.length === 0) return;
        const name = all[int(all.length)]!;
        const constraint = `node.labels.c${int(1e6)}==x`;
        const reply = await call(socket, 'POST', `/v1/services/${name}/update`, { constraintAdd: [constraint] });
        if (reply.status === 409) return void conflicts++;
        if (reply.status !== 200) throw new Error(`service update ${name}: ${reply.status} ${reply.text}`);
        services.get(name)!.add(constraint);
      }
      acknowledged++;
    };

    for (let cycle = 0; cycle < cycles; cycle++) {
      store = await startStoreProcess({ data, socket, home: dir, extraArgs: storeArgs }).catch((err: Error) => {
        throw new Error(`${where(cycle)}: the store refused to start after a kill -9: ${err.message}`);
      });
      const killAfterMs = 30 + int(400);
      const killEtcd = etcd !== undefined && cycle % 3 === 1;
      let killed = false;
      const worker = async () => {
        while (!killed) {
          try {
            await operation();
          } catch (err) {
            // After the kill a refused or reset connection is expected: that write was not acknowledged.
            if (killed) return;
            throw new Error(`${where(cycle)}: ${(err as Error).message}\nstore output:\n${store!.output().slice(-3000)}`, { cause: err });
          }
        }
      };
      const workers = Promise.all(Array.from({ length: WORKERS }, worker));
      // Some writes acknowledged in every cycle before the kill's random delay starts, however slow the
      // machine: a cycle that acknowledged nothing would check nothing.
      const ackedBefore = acknowledged;
      await Promise.race([workers, until(() => acknowledged >= ackedBefore + MIN_ACKS_PER_CYCLE, `${where(cycle)}: ${MIN_ACKS_PER_CYCLE} acknowledged writes`, 60_000)]);
      await new Promise((r) => setTimeout(r, killAfterMs));
      killed = true;
      store.child.kill('SIGKILL');
      if (killEtcd) {
        await etcd!.kill(0);
        etcdKills++;
      }
      await store.exited;
      await workers;
      closeClients();
      if (killEtcd) await etcd!.start(0);
    }

    // One more start: it must come up, then stop it and read the data directory directly.
    store = await startStoreProcess({ data, socket, home: dir, extraArgs: storeArgs });
    const listed = new Set((await call<{ name: string }[]>(socket, 'GET', '/v1/secrets')).body.map((s) => s.name));
    await stopProcess(store);
    store = undefined;
    closeClients();

    const opened = await openStore({ dataDir: data, etcd: etcdOptions });
    const lost: string[] = [];
    let checkedVersions = 0;
    try {
      for (const [name, byVersion] of versions) {
        if (!listed.has(name)) lost.push(`secret ${name}`);
        const latest = (await opened.secrets.inspect(name)).version;
        for (const [version, value] of byVersion) {
          if (version <= latest - DEFAULT_KEEP_VERSIONS) continue; // pruned by retention, as designed
          const revealed = await opened.secrets.reveal(name, version).catch(() => undefined);
          if (!revealed || !Buffer.from(revealed.data).equals(value)) lost.push(`secret ${name} version ${version}`);
          else checkedVersions++;
        }
      }
      for (const [name, constraints] of services) {
        const record = await opened.services.get(name).catch(() => undefined);
        if (!record) lost.push(`service ${name}`);
        else for (const c of constraints) if (!record.constraints.includes(c)) lost.push(`service ${name} constraint ${c}`);
      }
      for (const name of deployed) if (!(await opened.services.get(name).catch(() => undefined))) lost.push(`deployed service ${name}`);
    } finally {
      await opened.backend.close();
    }
    console.log(`      ${backend}, seed ${SEED}: ${cycles} kill -9 cycles${etcd ? ` (etcd killed too in ${etcdKills})` : ''}, ${attempted} writes attempted, ${acknowledged} acknowledged (${deploys} deploys), ${conflicts} refused as conflicts (${checkedVersions} secret versions decrypted and compared, ${services.size} services), ${lost.length} lost`);
    expect(lost, where(cycles)).to.deep.equal([]);
    expect(acknowledged).to.be.at.least(cycles * MIN_ACKS_PER_CYCLE);
  }
});
