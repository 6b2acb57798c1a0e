/**
 * The Docker volume plugin protocol under property-based bad input
 * (fast-check): a real agent (joined to a real store) serving the plugin on
 * a private socket name, sent the plugin's calls and others with random JSON,
 * no JSON, oversized and deeply nested bodies, without a content type (as
 * Docker sends them) or with odd ones. No dockerd: nothing here needs one.
 * Every answer is JSON with an "Err" string (a clear reason when refused);
 * no Mount is granted; the agent stays up with no container registered; the
 * store's revision does not move.
 *
 * HUSH_PROPERTY_SCALE multiplies the runs; HUSH_FUZZ_SEED replays.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { join } from 'node:path';
import { revisionOf, seedAdminObjects } from '../helpers/admin-routes.js';
import { startAgentProcess, type AgentProcess } from '../helpers/agent-process.js';
import { call, closeClients, sendOnce, type OnceReply } from '../helpers/http.js';
import { hush, startStoreProcess, stopProcess, waitForCluster, type StoreProcess } from '../helpers/hush-process.js';
import { check, runs } from '../helpers/property.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const CALLS = ['/Plugin.Activate', '/VolumeDriver.Capabilities', '/VolumeDriver.Create', '/VolumeDriver.Remove', '/VolumeDriver.Get', '/VolumeDriver.List', '/VolumeDriver.Path', '/VolumeDriver.Mount', '/VolumeDriver.Unmount'];
const JUNK_PATHS = ['/VolumeDriver.Frobnicate', '/', '/VolumeDriver.Mount/', '/volumedriver.mount', '/VolumeDriver.Mount?x=1', '/%ff', '/..%2f..', `/${'x'.repeat(2000)}`, '/__proto__', '/constructor'];
/** Plugin calls that may succeed with an empty Err; a Mount never may here (no service this store knows is named). */
const HARMLESS = new Set(['/Plugin.Activate', '/VolumeDriver.Capabilities', '/VolumeDriver.Create', '/VolumeDriver.Remove', '/VolumeDriver.Get', '/VolumeDriver.List', '/VolumeDriver.Path', '/VolumeDriver.Unmount']);

// Names: valid-looking ones no service has, and ones that are no name at all.
const volumeName = fc.oneof(
  fc.constantFrom('nope', 'web', 'a.b', 'x'.repeat(64), '', '../etc', '/abs', 'a b', 'ünï', '-rf', 'x'.repeat(65), '__proto__'),
  fc.stringMatching(/^[a-z][a-z0-9_.-]{0,20}$/).map((s) => `zz${s}`),
  fc.jsonValue({ maxDepth: 2 }),
);
const mountId = fc.oneof(fc.constantFrom('ab'.repeat(32), '', '../../x', 'ABCDEF', 'x'.repeat(300)), fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')), fc.jsonValue({ maxDepth: 1 }));
const pluginBody = fc
  .record({ Name: volumeName, ID: mountId, Opts: fc.oneof(fc.constant({}), fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }), fc.jsonValue({ maxDepth: 1 })), junk: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: [] })
  .map((b) => JSON.stringify(b));
const body = fc.oneof(
  { weight: 5, arbitrary: pluginBody },
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 100 }),
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
  fc.constantFrom('', '{', 'null', '[]', '"Name"', '{"Name": "web", "Name": "nope"}', '{"__proto__": {"Name": "web"}}'),
  fc.integer({ min: 1_000, max: 100_000 }).map((d) => `${'['.repeat(d)}${']'.repeat(d)}`),
  fc.integer({ min: 17_000, max: 200_000 }).map((n) => JSON.stringify({ Name: 'x'.repeat(n) })), // over the 16 KiB body limit
);
const contentType = fc.constantFrom(undefined, undefined, 'application/json', 'text/plain', 'application/vnd.docker.plugins.v1.2+json', 'multipart/form-data; boundary=x');
const pluginRequest = fc.record({ path: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...CALLS) }, fc.constantFrom(...JUNK_PATHS)), method: fc.constantFrom('POST', 'POST', 'POST', 'GET', 'PUT'), body, contentType });

type RawReply = Extract<OnceReply, { status: number }>;

/** One request as Docker makes it: no content type unless given, the body as bytes. */
const send = (socketPath: string, r: { path: string; method: string; body: string; contentType?: string }) => sendOnce(socketPath, r);

describe('Docker volume plugin protocol: property-based bad input (integration, no dockerd)', function () {
  this.timeout(180_000);
  let dir: string;
  let adminSocket: string;
  let store: StoreProcess;
  let agent: AgentProcess;
  let pluginSocket: string;
  let startRevision: number;
  const plugin = `hush-fuzz-${randomBytes(4).toString('hex')}`;

  before(async () => {
    dir = await tempDir('hush-plugin-fuzz-');
    adminSocket = join(dir, 'admin.sock');
    store = await startStoreProcess({ data: join(dir, 'data'), socket: adminSocket, home: dir, extraArgs: ['--listen', '127.0.0.1:0', '--admin', ''] });
    const { nodeAddress } = await waitForCluster(dir);
    await seedAdminObjects(adminSocket);
    const token = hush(['join-token'], { env: { HUSH_HOME: dir, HUSH_HOST: '' } }).stdout.trim();
    agent = await startAgentProcess({ store: nodeAddress, token, socket: join(dir, 'agent.sock'), name: 'fuzzed', dockerPlugin: plugin });
    pluginSocket = `/run/docker/plugins/${plugin}.sock`;
    startRevision = await revisionOf(adminSocket);
  });
  after(async () => {
    closeClients();
    if (agent) await agent.stop();
    if (store) await stopProcess(store);
    if (dir) await removeDir(dir);
  });

  it('random plugin calls: JSON with an Err string, a reason whenever refused, no mount; agent up, nothing registered, revision unchanged', async () => {
    const tally = { refused: 0, ok: 0, notFound: 0, closed: 0 };
    await check(
      fc.asyncProperty(pluginRequest, async (r) => {
        const reply = await send(pluginSocket, r);
        if ('closed' in reply) {
          // Only a body past the limit is cut off (the agent stops reading it).
          expect(Buffer.byteLength(r.body), reply.closed).to.be.greaterThan(16 * 1024);
          tally.closed++;
        } else {
          const known = CALLS.includes(r.path);
          expect(reply.status, reply.text).to.equal(known ? 200 : 404);
          const parsed = JSON.parse(reply.text) as { Err?: unknown };
          expect(parsed.Err, reply.text).to.be.a('string');
          if (parsed.Err === '') {
            expect(HARMLESS.has(r.path), `${r.path} succeeded with ${r.body.slice(0, 200)}`).to.equal(true);
            tally.ok++;
          } else {
            expect(parsed.Err).to.not.include('\n');
            if (known) tally.refused++;
            else tally.notFound++;
          }
        }
        expect(agent.child.exitCode, 'the agent is running').to.equal(null);
      }),
      runs(250),
    );
    console.log(`      ${JSON.stringify(tally)}`);
    const status = await call<{ session: { state: string } }>(agent.socket, 'GET', '/v1/status');
    expect(status.body.session.state).to.equal('ready');
    expect((await call<unknown[]>(agent.socket, 'GET', '/v1/containers')).body).to.deep.equal([]);
    expect(await revisionOf(adminSocket)).to.equal(startRevision);
    expect(tally.refused, 'the generator reaches the refusals').to.be.greaterThan(0);
  });

  it('clients that leave mid-body, and 100 concurrent calls: the agent keeps answering', async () => {
    const [host] = [pluginSocket];
    await Promise.all(
      Array.from({ length: 20 }, () =>
        new Promise<void>((resolve) => {
          const req = request({ socketPath: host, method: 'POST', path: '/VolumeDriver.Mount', headers: { 'content-length': '5000' } });
          req.on('error', () => resolve());
          req.write('{"Name": "web", "ID": "');
          setImmediate(() => {
            req.destroy();
            resolve();
          });
        }),
      ),
    );
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => send(pluginSocket, { path: '/VolumeDriver.Mount', method: 'POST', body: JSON.stringify({ Name: `nope${i}`, ID: 'ab'.repeat(32) }) })));
    for (const reply of replies) {
      expect(reply).to.have.property('status', 200);
      expect(JSON.parse((reply as RawReply).text).Err).to.be.a('string').and.not.equal('');
    }
    // Positive control: a well-formed call answers as Docker expects.
    const activate = await send(pluginSocket, { path: '/Plugin.Activate', method: 'POST', body: '' });
    expect(JSON.parse((activate as RawReply).text)).to.deep.include({ Implements: ['VolumeDriver'] });
    expect(agent.child.exitCode).to.equal(null);
    expect(await revisionOf(adminSocket)).to.equal(startRevision);
  });
});
