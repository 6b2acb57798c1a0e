/**
 * An authenticated but hostile agent, property-based (fast-check): a real
 * node certificate obtained through Join, then sessions carrying odd
 * messages — acks for revisions never sent, heartbeats from any time,
 * container starts and stops for containers and services it has no claim
 * to, invalid Hellos, unknown protobuf fields, bytes that are no protobuf,
 * huge strings, floods. Whatever comes: the store answers with an error (a
 * refused decision, a closed session) or ignores it, stays up, and its
 * revision does not move; a well-behaved session still gets its snapshot.
 *
 * HUSH_PROPERTY_SCALE multiplies the runs; HUSH_FUZZ_SEED replays.
 */
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import fc from 'fast-check';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nodeServiceClient, STORE_TLS_NAME, type JoinResponse, type StoreMessage } from '../../src/protocol/index.js';
import * as pki from '../../src/pki/index.js';
import { revisionOf, seedAdminObjects } from '../helpers/admin-routes.js';
import { call, closeClients } from '../helpers/http.js';
import { hush, startStoreProcess, stopProcess, waitForCluster, type StoreProcess } from '../helpers/hush-process.js';
import { check, runs } from '../helpers/property.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
const OPTIONS = { 'grpc.ssl_target_name_override': STORE_TLS_NAME, 'grpc.default_authority': STORE_TLS_NAME, 'grpc.max_send_message_length': 8 << 20 };
const SESSION = '/hush.v1.NodeService/Session';

/** How a session ended, or the first decision it got, or nothing within the wait. */
type Outcome = { status: grpc.status; details: string } | { decision: StoreMessage } | { open: true };

// --- protobuf by hand, for messages the generated code would never send ---
function varint(n: bigint): Buffer {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Buffer.from(out);
}
const tag = (field: number, wire: number): Buffer => varint(BigInt((field << 3) | wire));
const lengthDelimited = (field: number, bytes: Buffer): Buffer => Buffer.concat([tag(field, 2), varint(BigInt(bytes.length)), bytes]);
const varintField = (field: number, n: bigint): Buffer => Buffer.concat([tag(field, 0), varint(n)]);
/** AgentMessage.ack (field 2) with Ack.revision (field 1). */
const rawAck = (revision: bigint, extra: Buffer = Buffer.alloc(0)): Buffer => lengthDelimited(2, Buffer.concat([varintField(1, revision), extra]));

const unknownField = fc
  .record({ field: fc.integer({ min: 6, max: 2 ** 29 - 1 }), wire: fc.constantFrom(0, 1, 2, 5), value: fc.uint8Array({ maxLength: 40 }) })
  .map(({ field, wire, value }) =>
    wire === 0 ? varintField(field, BigInt(value.length * 977)) : wire === 2 ? lengthDelimited(field, Buffer.from(value)) : Buffer.concat([tag(field, wire), Buffer.alloc(wire === 1 ? 8 : 4)]),
  );

// Names no service or container of this store has, or may have.
const badId = fc.constantFrom('', '../../etc/passwd', '/abs', 'a/b', 'x'.repeat(300), '\u0000', 'ünï', ' ', 'web-1\n');
const foreignService = fc.constantFrom('nope', 'svc-not-here', 'x'.repeat(64), '', '..', 'SVC', 'svc ', '__proto__');
const wellFormedId = fc.stringMatching(/^[a-z0-9][a-z0-9_.-]{0,30}$/);

const message = fc.oneof(
  fc.record({ body: fc.constant('ack'), ack: fc.record({ revision: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER), fc.constant(0)) }) }),
  fc.record({ body: fc.constant('heartbeat'), heartbeat: fc.record({ sent_at_ms: fc.oneof(fc.integer(), fc.constant(-1), fc.constant(Number.MAX_SAFE_INTEGER)) }) }),
  fc.record({ body: fc.constant('container_stop'), container_stop: fc.record({ container_id: fc.oneof(badId, wellFormedId) }) }),
  fc.record({
    body: fc.constant('container_start'),
    container_start: fc.record({ request_id: fc.string({ maxLength: 40 }), container: fc.record({ id: fc.oneof(badId, wellFormedId), service: foreignService }) }),
  }),
  fc.record({
    body: fc.constant('hello'),
    hello: fc.record({
      // Invalid ones only: a valid Hello is the agent's truth and is stored, by design.
      containers: fc.oneof(
        fc.array(fc.record({ id: badId, service: fc.constantFrom('svc', 'nope') }), { minLength: 1, maxLength: 5 }),
        wellFormedId.map((id) => [{ id, service: 'svc' }, { id, service: 'svc' }]),
      ),
      last_revision: fc.nat(),
    }),
  }),
);

/** Raw bytes for the Session stream: unknown fields, no protobuf at all, huge strings, acks past 2^53. */
const rawMessage = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  fc.array(unknownField, { minLength: 1, maxLength: 6 }).map((f) => Buffer.concat(f)),
  fc.tuple(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.array(unknownField, { maxLength: 3 })).map(([r, f]) => rawAck(r, Buffer.concat(f))),
  fc.integer({ min: 100_000, max: 900_000 }).map((n) => lengthDelimited(5, lengthDelimited(1, Buffer.alloc(n, 'x')))), // a container_stop with a huge id
  fc.constant(lengthDelimited(5, lengthDelimited(1, Buffer.alloc(2 << 20, 'y')))), // over the 1 MiB message limit
  fc.constant(Buffer.from([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f])), // a length far past the end
);

describe('node protocol: a hostile agent with a real certificate (property-based, integration)', function () {
  this.timeout(180_000);
  let dir: string;
  let socket: string;
  let store: StoreProcess;
  let address: string;
  let caPem: string;
  let node: { key: string; cert: string; id: string };
  let startRevision: number;

  const clientWith = (key?: string, cert?: string) =>
    new (nodeServiceClient())(address, grpc.credentials.createSsl(Buffer.from(caPem), key ? Buffer.from(key) : null, cert ? Buffer.from(cert) : null), OPTIONS) as unknown as Client;

  /** Sends `messages` on one session, half-closes, and waits for the store to end it (or 3 s of silence). */
  async function sessionWith(c: grpc.Client, messages: (Buffer | object)[], raw: boolean): Promise<Outcome[]> {
    const stream: grpc.ClientDuplexStream<unknown, StoreMessage | Buffer> = raw
      ? (c.makeBidiStreamRequest(SESSION, (b: Buffer) => b, (b: Buffer) => b) as grpc.ClientDuplexStream<unknown, Buffer>)
      : ((c as Client).Session() as grpc.ClientDuplexStream<unknown, StoreMessage>);
    const outcomes: Outcome[] = [];
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        outcomes.push({ open: true });
        stream.cancel();
      }, 3_000);
      stream.on('data', (m: StoreMessage | Buffer) => {
        if (!Buffer.isBuffer(m) && m.body === 'decision') outcomes.push({ decision: m });
      });
      stream.on('error', (err: grpc.ServiceError) => {
        if (err.code !== grpc.status.CANCELLED) outcomes.push({ status: err.code, details: err.details });
      });
      stream.on('status', () => {
        clearTimeout(timer);
        resolve(outcomes);
      });
      for (const m of messages) stream.write(m);
      stream.end();
    });
  }

  before(async () => {
    dir = await tempDir('hush-hostile-');
    socket = join(dir, 'admin.sock');
    store = await startStoreProcess({ data: join(dir, 'data'), socket, home: dir, extraArgs: ['--listen', '127.0.0.1:0', '--admin', ''] });
    address = (await waitForCluster(dir)).nodeAddress;
    caPem = await readFile(join(dir, 'ca.pem'), 'utf8');
    await seedAdminObjects(socket);
    const token = hush(['join-token'], { env: { HUSH_HOME: dir, HUSH_HOST: '' } }).stdout.trim();
    const key = pki.generateKeyPair().keyPem;
    const joining = clientWith();
    const reply = await new Promise<JoinResponse>((resolve, reject) =>
      joining.Join({ token, csr_pem: pki.createCsr(key, 'x'), name: 'hostile', hostname: 'hostile', labels: {} }, (err: grpc.ServiceError | null, r: JoinResponse) => (err ? reject(err) : resolve(r))),
    );
    joining.close();
    node = { key, cert: reply.certificate_pem, id: reply.node_id };
    startRevision = await revisionOf(socket);
  });
  after(async () => {
    closeClients();
    if (store) await stopProcess(store);
    if (dir) await removeDir(dir);
  });

  async function assertUnchanged(what: string): Promise<void> {
    expect(store.child.exitCode, `the store is running (${what})`).to.equal(null);
    expect(await revisionOf(socket), `revision after ${what}`).to.equal(startRevision);
    const nodes = await call<{ id: string; containers?: unknown[] }[]>(socket, 'GET', `/v1/nodes/${node.id}`);
    expect(nodes.status, nodes.text).to.equal(200);
  }

  it('sessions of generated messages (acks, heartbeats, foreign container starts and stops, invalid Hellos): refused or ignored, nothing changes', async () => {
    const c = clientWith(node.key, node.cert);
    let sessions = 0;
    let sent = 0;
    const seen = { refusedDecisions: 0, closed: 0 };
    await check(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 25 }), async (messages) => {
        const outcomes = await sessionWith(c, messages, false);
        sessions++;
        sent += messages.length;
        for (const o of outcomes) {
          if ('decision' in o && o.decision.body === 'decision') {
            expect(o.decision.decision.allowed, 'a start for a service or container the node has no claim to').to.equal(false);
            expect(o.decision.decision.reason).to.not.equal('');
            seen.refusedDecisions++;
          }
          if ('status' in o) {
            expect(o.status, o.details).to.be.oneOf([grpc.status.INVALID_ARGUMENT, grpc.status.RESOURCE_EXHAUSTED, grpc.status.OK]);
            seen.closed++;
          }
        }
        await assertUnchanged(`session ${sessions}`);
      }),
      runs(25),
    );
    c.close();
    console.log(`      ${sessions} sessions, ${sent} messages; ${seen.refusedDecisions} refused starts, ${seen.closed} sessions closed by the store`);
    expect(seen.refusedDecisions + seen.closed, 'the store answered some messages with an error').to.be.greaterThan(0);
  });

  it('sessions of raw bytes (unknown fields, not protobuf, acks up to 2^64-1, huge and oversized strings): refused or ignored, nothing changes', async () => {
    const c = clientWith(node.key, node.cert);
    let sessions = 0;
    await check(
      fc.asyncProperty(fc.array(rawMessage, { minLength: 1, maxLength: 6 }), async (messages) => {
        const outcomes = await sessionWith(c, messages, true);
        sessions++;
        for (const o of outcomes) if ('status' in o) expect(o.status, o.details).to.be.oneOf([grpc.status.INTERNAL, grpc.status.INVALID_ARGUMENT, grpc.status.RESOURCE_EXHAUSTED, grpc.status.OK]);
        await assertUnchanged(`raw session ${sessions}`);
      }),
      runs(20),
    );
    c.close();
  });

  it('a flood (5,000 acks and heartbeats on one session, 20 sessions opened back to back): the store stays up, nothing changes', async () => {
    const c = clientWith(node.key, node.cert);
    const flood = Array.from({ length: 5_000 }, (_, i) => (i % 2 === 0 ? { body: 'ack', ack: { revision: i * 7919 } } : { body: 'heartbeat', heartbeat: { sent_at_ms: i } }));
    await sessionWith(c, flood, false);
    await Promise.all(Array.from({ length: 20 }, () => sessionWith(c, [{ body: 'ack', ack: { revision: 1 } }], false)));
    c.close();
    await assertUnchanged('the flood');
  });

  it('positive control: the same certificate still opens a session and gets its snapshot; a valid Hello is stored', async () => {
    const c = clientWith(node.key, node.cert);
    const first = await new Promise<StoreMessage>((resolve, reject) => {
      const stream = c.Session() as grpc.ClientDuplexStream<unknown, StoreMessage>;
      stream.on('data', (m: StoreMessage) => {
        resolve(m);
        stream.cancel();
      });
      stream.on('error', (err: grpc.ServiceError) => {
        if (err.code !== grpc.status.CANCELLED) reject(err);
      });
      stream.write({ body: 'hello', hello: { containers: [{ id: 'web-1', service: 'svc' }], last_revision: 0 } });
    });
    c.close();
    expect(first.body).to.equal('snapshot');
    // What the checks above compare against can move: a valid Hello moves it.
    expect(await revisionOf(socket)).to.be.greaterThan(startRevision);
  });
});
