/**
 * The dispatcher's diff, on its own: what NodeSession.push sends for a
 * desired state, given what the node was sent before (or holds, on resume).
 * No store and no network: desired states in, messages out.
 */
import { expect } from 'chai';
import type { StoreMessage, WireDelta, WireSecretVersion, WireServiceGrants, WireSnapshot } from '../../src/protocol/index.js';
import { NodeSession, type DesiredState } from '../../src/server/node-session.js';

class RecordingStream {
  readonly written: StoreMessage[] = [];
  write(message: StoreMessage): boolean {
    this.written.push(message);
    return true;
  }
}

const grants = (service: string, ...sources: string[]): WireServiceGrants => ({ service, grants: sources.map((s) => ({ source: s, target: s, uid: 0, gid: 0, mode: 0o444 })) });

function desired(versions: Record<string, number>, services: WireServiceGrants[] = [], ids: Record<string, string> = {}): DesiredState {
  return {
    versions: new Map(Object.entries(versions)),
    ids: new Map(Object.keys(versions).map((name) => [name, ids[name] ?? `id-${name}`])),
    services: new Map(services.map((s) => [s.service, s])),
  };
}

describe('node session diff: what a push sends over what the node holds', () => {
  let stream: RecordingStream;
  let session: NodeSession;
  /** Every decryption the session asks for: only what it sends. */
  let revealed: string[];
  let currentIds: Map<string, string>;
  const reveal = async (name: string, version: number): Promise<WireSecretVersion & { secret_id: string }> => {
    revealed.push(`${name}@${version}`);
    return { name, version, data: Buffer.from(`${name}-v${version}`), created_at_ms: 0, secret_id: currentIds.get(name) ?? `id-${name}` };
  };
  const last = () => stream.written.at(-1)!;
  const lastDelta = (): WireDelta => {
    const message = last();
    if (message.body !== 'delta') throw new Error(`expected a delta, got ${message.body}`);
    return message.delta;
  };

  beforeEach(() => {
    stream = new RecordingStream();
    session = new NodeSession('node-1', '', stream as never, 5_000);
    revealed = [];
    currentIds = new Map();
  });

  it('sends a snapshot first (with the heartbeat period), then nothing while nothing changes', async () => {
    const state = desired({ a: 1, b: 3 }, [grants('web', 'a', 'b')]);
    expect(await session.push(state, 10, reveal)).to.deep.equal({ kind: 'snapshot', secretVersions: 2, resumed: false });
    const message = last();
    expect(message.body).to.equal('snapshot');
    const snapshot = (message as { snapshot: WireSnapshot }).snapshot;
    expect(snapshot.revision).to.equal(10);
    expect(snapshot.heartbeat_period_ms).to.equal(5_000);
    expect(snapshot.secrets.map((s) => `${s.name}@${s.version}`).sort()).to.deep.equal(['a@1', 'b@3']);
    expect(snapshot.services).to.deep.equal([grants('web', 'a', 'b')]);

    revealed = [];
    expect(await session.push(desired({ a: 1, b: 3 }, [grants('web', 'a', 'b')]), 11, reveal)).to.equal(undefined);
    expect(stream.written).to.have.length(1);
    expect(revealed, 'nothing decrypted for an unchanged state').to.deep.equal([]);
  });

  it('a new version sends that version alone, decrypting nothing else', async () => {
    await session.push(desired({ a: 1, b: 3 }, [grants('web', 'a', 'b')]), 10, reveal);
    revealed = [];
    expect(await session.push(desired({ a: 2, b: 3 }, [grants('web', 'a', 'b')]), 12, reveal)).to.deep.equal({ kind: 'delta', secretVersions: 1, resumed: false });
    const delta = lastDelta();
    expect(delta.revision).to.equal(12);
    expect(delta.upserts.map((u) => `${u.name}@${u.version}`)).to.deep.equal(['a@2']);
    expect(delta.removals).to.deep.equal([]);
    expect(delta.services).to.deep.equal([]);
    expect(delta.removed_services).to.deep.equal([]);
    expect(revealed).to.deep.equal(['a@2']);
  });

  it('a secret no longer entitled and a service no longer run are removed; changed grants are resent', async () => {
    await session.push(desired({ a: 1, b: 3 }, [grants('web', 'a'), grants('db', 'b')]), 10, reveal);
    await session.push(desired({ a: 1 }, [grants('web', 'a', 'c')]), 11, reveal);
    const delta = lastDelta();
    expect(delta.upserts).to.deep.equal([]);
    expect(delta.removals).to.deep.equal(['b']);
    expect(delta.services).to.deep.equal([grants('web', 'a', 'c')]);
    expect(delta.removed_services).to.deep.equal(['db']);
  });

  it('a secret made again under its name (a new id, the same version number) is resent', async () => {
    await session.push(desired({ a: 1 }), 10, reveal);
    revealed = [];
    currentIds.set('a', 'id-a-again');
    await session.push(desired({ a: 1 }, [], { a: 'id-a-again' }), 11, reveal);
    expect(lastDelta().upserts.map((u) => [u.name, u.version, u.secret_id])).to.deep.equal([['a', 1, 'id-a-again']]);
    expect(revealed).to.deep.equal(['a@1']);
  });

  it('revisions only grow, even when the store revision it is given does not', async () => {
    await session.push(desired({ a: 1 }), 10, reveal);
    await session.push(desired({ a: 2 }), 10, reveal);
    expect(lastDelta().revision).to.equal(11);
    await session.push(desired({ a: 3 }), 4, reveal);
    expect(lastDelta().revision).to.equal(12);
  });

  it('after resume, the first push is a delta over what the node holds, naming the revision it resumed from', async () => {
    expect(session.resume({ revision: 7, versions: new Map([['a', 1], ['gone', 2]]), ids: new Map([['a', 'id-a'], ['gone', 'id-gone']]), services: ['web', 'old'] })).to.equal(true);
    expect(await session.push(desired({ a: 1, b: 1 }, [grants('web', 'a', 'b')]), 9, reveal)).to.deep.equal({ kind: 'delta', secretVersions: 1, resumed: true });
    const delta = lastDelta();
    expect(delta.base_revision).to.equal(7);
    expect(delta.revision).to.equal(9);
    expect(delta.upserts.map((u) => `${u.name}@${u.version}`)).to.deep.equal(['b@1']);
    expect(delta.removals).to.deep.equal(['gone']);
    // Grants are not in a Hello: every service the node should run is sent again.
    expect(delta.services).to.deep.equal([grants('web', 'a', 'b')]);
    expect(delta.removed_services).to.deep.equal(['old']);
    expect(revealed).to.deep.equal(['b@1']);
  });

  it('resume is refused once a snapshot went out', async () => {
    await session.push(desired({ a: 1 }), 10, reveal);
    expect(session.resume({ revision: 7, versions: new Map(), ids: new Map(), services: [] })).to.equal(false);
  });

  it('an ack returns the versions its revision left on the node, covers the sends before it, and a repeated ack returns nothing', async () => {
    await session.push(desired({ a: 1 }), 10, reveal);
    await session.push(desired({ a: 2, b: 1 }), 11, reveal);
    await session.push(desired({ a: 3, b: 1 }), 12, reveal);
    expect(session.acknowledge(11)).to.deep.equal(new Map([['a', 2], ['b', 1]]));
    expect(session.acknowledge(11)).to.equal(undefined);
    expect(session.acknowledge(12)).to.deep.equal(new Map([['a', 3], ['b', 1]]));
    expect(session.delivered).to.deep.equal(new Map([['a', 3], ['b', 1]]));
  });
});
