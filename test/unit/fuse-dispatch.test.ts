/**
 * The kernel-protocol request handler, fed bytes directly: what the kernel
 * sends, and what it never should (malformed, short, unknown, random). We
 * cannot inject requests into /dev/fuse, so this is where the handler's
 * promises are checked byte by byte: every request answered exactly once
 * (none for FORGET/BATCH_FORGET/INTERRUPT), nothing ever throws, a READ reply
 * is zeroed once written. The integration suites run the same code for real.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import { Errno, InitFlag, IN_HEADER_BYTES, NO_REPLY_OPS, Op, OpenFlag, ROOT_ID, S_IFREG } from '../../src/tmpfs-mount/fuse-abi.js';
import { Dispatcher, negotiate, REPLY_BUFFER_BYTES, REQUEST_BUFFER_BYTES, serveOne, type FuseIo } from '../../src/tmpfs-mount/kernel-dispatch.js';
import { Counter, type FromWorker, type ViewUpdate, type WorkerNode } from '../../src/tmpfs-mount/kernel-messages.js';
import { forceDrop, MountKey, stateOf } from '../../src/tmpfs-mount/shared-version.js';
import { check, runs } from '../helpers/property.js';

const KEY = randomBytes(32);
const ALL_FLAGS = 0x7fffffff;
const PREFILL = '.hush-fill-test-';

interface Header {
  unique?: bigint;
  nodeid?: number;
  uid?: number;
  gid?: number;
  pid?: number;
  len?: number;
}

function request(opcode: number, body: Buffer = Buffer.alloc(0), h: Header = {}): Buffer {
  const b = Buffer.alloc(IN_HEADER_BYTES + body.length);
  b.writeUInt32LE(h.len ?? b.length, 0);
  b.writeUInt32LE(opcode >>> 0, 4);
  b.writeBigUInt64LE(h.unique ?? 7n, 8);
  b.writeBigUInt64LE(BigInt(h.nodeid ?? ROOT_ID), 16);
  b.writeUInt32LE(h.uid ?? 0, 24);
  b.writeUInt32LE(h.gid ?? 0, 28);
  b.writeUInt32LE(h.pid ?? 1, 32);
  body.copy(b, IN_HEADER_BYTES);
  return b;
}

function initBody(major = 7, minor = 45, flags = ALL_FLAGS): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(major, 0);
  b.writeUInt32LE(minor, 4);
  b.writeUInt32LE(131072, 8);
  b.writeUInt32LE(flags >>> 0, 12);
  return b;
}

function readBody(offset: number, size: number): Buffer {
  const b = Buffer.alloc(40);
  b.writeBigUInt64LE(BigInt(offset), 8);
  b.writeUInt32LE(size, 16);
  return b;
}

const cstring = (s: string): Buffer => Buffer.concat([Buffer.from(s), Buffer.from([0])]);
const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};

interface Reply {
  length: number;
  error: number;
  unique: bigint;
  body: Buffer;
}

const A = Buffer.from('alpha secret bytes\n');
const BIG = randomBytes(200 * 1024);

function fixture(opts: { noOpen?: boolean } = {}) {
  const key = new MountKey(Buffer.from(KEY));
  const node = (id: number, bytes: Buffer): WorkerNode => ({
    id,
    attr: { ino: id, size: bytes.length, mode: S_IFREG | 0o440, nlink: 1, uid: 1000, gid: 1001, mtimeMs: 1_700_000_000_123 },
    shared: key.seal(id, bytes),
  });
  const initial: ViewUpdate = {
    kind: 'update',
    names: [
      ['a', 2],
      ['big', 3],
      ['broken', 4],
    ],
    add: [node(2, A), node(3, BIG), { id: 4, attr: { ino: 4, size: 9, mode: S_IFREG | 0o444, nlink: 1, uid: 0, gid: 0, mtimeMs: 0 } }],
    drop: [],
  };
  const events: FromWorker[] = [];
  const queue: ViewUpdate[] = [];
  const counters = new BigInt64Array(new SharedArrayBuffer(8 * Counter.SLOTS));
  const d = new Dispatcher(
    { key: Buffer.from(KEY), connection: new Int32Array(new SharedArrayBuffer(4)), rootMtimeMs: 1_700_000_000_000, entryTimeoutMs: 60_000, attrTimeoutMs: 60_000, noOpen: opts.noOpen ?? true, prefillPrefix: PREFILL },
    counters,
    (e) => events.push(e),
    () => queue.splice(0),
  );
  d.table.apply(initial);
  const out = Buffer.alloc(REPLY_BUFFER_BYTES);
  const send = (req: Buffer, length = req.length): Reply | null => {
    const n = d.dispatch(req, length, out);
    if (n === 0) return null;
    expect(out.readUInt32LE(0), 'reply length field').to.equal(n);
    return { length: n, error: out.readInt32LE(4), unique: out.readBigUInt64LE(8), body: Buffer.from(out.subarray(16, n)) };
  };
  return { d, events, queue, counters, send, node, key, out };
}

function initialized(opts: { noOpen?: boolean; flags?: number } = {}) {
  const f = fixture(opts);
  const r = f.send(request(Op.INIT, initBody(7, 45, opts.flags ?? ALL_FLAGS), { unique: 1n }));
  expect(r!.error).to.equal(0);
  return f;
}

describe('FUSE kernel protocol: request handler', () => {
  describe('INIT', () => {
    it('negotiates only what the read path uses, and never READDIRPLUS', () => {
      const n = negotiate({ major: 7, minor: 45, maxReadahead: 131072, flags: ALL_FLAGS, flags2: 0xffffffff }, true);
      expect(n.refused).to.equal(null);
      expect(n.minor).to.equal(40);
      expect(n.noOpen).to.equal(true);
      expect(n.flags & InitFlag.DO_READDIRPLUS).to.equal(0);
      expect(n.flags).to.equal(
        InitFlag.ASYNC_READ | InitFlag.PARALLEL_DIROPS | InitFlag.MAX_PAGES | InitFlag.NO_OPEN_SUPPORT | InitFlag.NO_OPENDIR_SUPPORT | InitFlag.INIT_EXT,
      );
    });

    it('refuses a kernel too old or of another major version, saying which and what to do', () => {
      expect(negotiate({ major: 7, minor: 30, maxReadahead: 131072, flags: ALL_FLAGS, flags2: 0 }, true).refused).to.match(/7\.30 is older than 7\.31 .*--fuse native/);
      expect(negotiate({ major: 8, minor: 0, maxReadahead: 131072, flags: ALL_FLAGS, flags2: 0 }, true).refused).to.match(/protocol 8\.0/);
      const f = fixture();
      const r = f.send(request(Op.INIT, initBody(7, 26), { unique: 5n }));
      expect(r).to.deep.include({ error: -Errno.EPROTO, unique: 5n, length: 16 });
      expect(f.events).to.have.length(1);
      expect(f.events[0]).to.deep.include({ kind: 'init', noOpen: false });
      expect((f.events[0] as { refused: string }).refused).to.match(/older than 7\.31/);
      // Still not initialized: everything else is answered EIO.
      expect(f.send(request(Op.GETATTR, Buffer.alloc(16)))!.error).to.equal(-Errno.EIO);
    });

    it('answers the reply layout: major, minor, flags, max_write, max_pages; a second INIT is refused', () => {
      const f = fixture();
      const r = f.send(request(Op.INIT, initBody(), { unique: 1n }))!;
      expect(r.length).to.equal(16 + 64);
      expect(r.body.readUInt32LE(0)).to.equal(7);
      expect(r.body.readUInt32LE(4)).to.equal(40);
      expect(r.body.readUInt32LE(8)).to.equal(131072);
      expect(r.body.readUInt32LE(12) & InitFlag.NO_OPEN_SUPPORT).to.not.equal(0);
      expect(r.body.readUInt32LE(20)).to.equal(4096);
      expect(r.body.readUInt16LE(28)).to.equal(32);
      expect(f.send(request(Op.INIT, initBody(), { unique: 2n }))!.error).to.equal(-Errno.EPROTO);
    });

    it('without NO_OPEN_SUPPORT from the kernel, answers opens with keep_cache and refuses write opens', () => {
      const f = initialized({ flags: ALL_FLAGS & ~InitFlag.NO_OPEN_SUPPORT });
      const r = f.send(request(Op.OPEN, Buffer.alloc(8), { nodeid: 2 }))!;
      expect(r.error).to.equal(0);
      expect(r.body.readUInt32LE(8)).to.equal(OpenFlag.KEEP_CACHE);
      const write = Buffer.alloc(8);
      write.writeUInt32LE(1, 0); // O_WRONLY
      expect(f.send(request(Op.OPEN, write, { nodeid: 2 }))!.error).to.equal(-Errno.EROFS);
      expect(f.send(request(Op.RELEASE, Buffer.alloc(24), { nodeid: 2 }))!.error).to.equal(0);
    });
  });

  describe('after INIT', () => {
    it('LOOKUP: the current node of a name with long timeouts and its attributes; reports the caller once per node', () => {
      const f = initialized();
      const r = f.send(request(Op.LOOKUP, cstring('a'), { pid: 4242, uid: 1000, gid: 1001 }))!;
      expect(r.error).to.equal(0);
      expect(r.length).to.equal(16 + 128);
      expect(Number(r.body.readBigUInt64LE(0))).to.equal(2); // nodeid
      expect(Number(r.body.readBigUInt64LE(16))).to.equal(60); // entry_valid
      expect(Number(r.body.readBigUInt64LE(40))).to.equal(2); // attr.ino
      expect(Number(r.body.readBigUInt64LE(48))).to.equal(A.length); // attr.size
      expect(Number(r.body.readBigUInt64LE(72))).to.equal(1_700_000_000); // attr.mtime
      expect(r.body.readUInt32LE(40 + 52)).to.equal(123_000_000); // attr.mtimensec
      expect(r.body.readUInt32LE(40 + 60)).to.equal(S_IFREG | 0o440); // attr.mode
      expect(r.body.readUInt32LE(40 + 68)).to.equal(1000); // attr.uid
      f.send(request(Op.LOOKUP, cstring('a'), { pid: 99 }));
      const lookups = f.events.filter((e) => e.kind === 'lookup');
      expect(lookups).to.have.length(1);
      expect(lookups[0]).to.deep.include({ node: 2, pid: 4242, uid: 1000, gid: 1001 });
      expect(f.send(request(Op.LOOKUP, cstring('nope')))!.error).to.equal(-Errno.ENOENT);
      expect(f.send(request(Op.LOOKUP, cstring('a'), { nodeid: 2 }))!.error).to.equal(-Errno.ENOTDIR);
      // A version that could not be read: EIO, counted, reported.
      expect(f.send(request(Op.LOOKUP, cstring('broken')))!.error).to.equal(-Errno.EIO);
      expect(f.counters[Counter.ERRORS]).to.equal(1n);
    });

    it('LOOKUP of a prefill name: the current node of that id, counted for FORGET, never reported as an access; ENOENT for anything else', () => {
      const f = initialized();
      const r = f.send(request(Op.LOOKUP, cstring(`${PREFILL}2`), { pid: 4242 }))!;
      expect(r.error).to.equal(0);
      expect(Number(r.body.readBigUInt64LE(0))).to.equal(2);
      expect(Number(r.body.readBigUInt64LE(48))).to.equal(A.length);
      expect(f.events.filter((e) => e.kind === 'lookup'), 'the agent looking up its own node is no access').to.have.length(0);
      // The kernel holds the node through that lookup: it is not dropped until forgotten.
      expect(Atomics.load(stateOf(f.d.table.get(2)!.shared!), 0) >> 1).to.equal(1);
      // The container's lookup of the name is still an access.
      f.send(request(Op.LOOKUP, cstring('a'), { pid: 7 }));
      expect(f.events.flatMap((e) => (e.kind === 'lookup' ? [[e.node, e.pid]] : []))).to.deep.equal([[2, 7]]);
      for (const bad of [`${PREFILL}`, `${PREFILL}02`, `${PREFILL}2x`, `${PREFILL}99`, `${PREFILL}-2`, `${PREFILL}1`, `.hush-fill-other-2`]) {
        expect(f.send(request(Op.LOOKUP, cstring(bad)))!.error, bad).to.equal(-Errno.ENOENT);
      }
      // A superseded version (no name points at it any more) has no prefill name either.
      f.queue.push({ kind: 'update', names: [['a', 5]], add: [f.node(5, Buffer.from('new'))], drop: [] });
      expect(f.send(request(Op.LOOKUP, cstring(`${PREFILL}2`)))!.error).to.equal(-Errno.ENOENT);
      expect(Number(f.send(request(Op.LOOKUP, cstring(`${PREFILL}5`)))!.body.readBigUInt64LE(0))).to.equal(5);
    });

    it('GETATTR and STATX of the root and of a node; ESTALE for a node it does not hold', () => {
      const f = initialized();
      const root = f.send(request(Op.GETATTR, Buffer.alloc(16)))!;
      expect(root.body.readUInt32LE(16 + 60)).to.equal(0o40555);
      const sx = f.send(request(Op.STATX, Buffer.alloc(24), { nodeid: 3 }))!;
      expect(sx.length).to.equal(16 + 288);
      expect(Number(sx.body.readBigUInt64LE(32 + 40))).to.equal(BIG.length); // stat.size
      expect(sx.body.readUInt16LE(32 + 28)).to.equal(S_IFREG | 0o440); // stat.mode
      expect(sx.body.readUInt32LE(32 + 20)).to.equal(1000); // stat.uid
      expect(f.send(request(Op.GETATTR, Buffer.alloc(16), { nodeid: 99 }))!.error).to.equal(-Errno.ESTALE);
      expect(f.counters[Counter.STALE]).to.equal(1n);
    });

    it('READ: the bytes of the node asked for, across chunk boundaries, nothing past the end', () => {
      const f = initialized();
      const r = f.send(request(Op.READ, readBody(60 * 1024, 128 * 1024), { nodeid: 3 }))!;
      expect(r.body.equals(BIG.subarray(60 * 1024, 188 * 1024))).to.equal(true);
      const tail = f.send(request(Op.READ, readBody(BIG.length - 10, 4096), { nodeid: 3 }))!;
      expect(tail.body.equals(BIG.subarray(BIG.length - 10))).to.equal(true);
      expect(f.send(request(Op.READ, readBody(BIG.length + 1, 4096), { nodeid: 3 }))!.length).to.equal(16);
      // Larger than the reply buffer can hold: clamped, never past it.
      expect(f.send(request(Op.READ, readBody(0, 0xffffffff), { nodeid: 3 }))!.length).to.equal(16 + 128 * 1024);
    });

    it('serveOne writes exactly one reply and zeroes the plaintext it carried', () => {
      const f = initialized();
      const writes: Buffer[] = [];
      const pending = [request(Op.READ, readBody(0, 4096), { nodeid: 2, unique: 11n })];
      const io: FuseIo = {
        read: (buf) => {
          const next = pending.shift()!;
          next.copy(buf);
          return next.length;
        },
        write: (buf, length) => writes.push(Buffer.from(buf.subarray(0, length))),
      };
      const out = Buffer.alloc(REPLY_BUFFER_BYTES);
      expect(serveOne(f.d, io, Buffer.alloc(REQUEST_BUFFER_BYTES), out)).to.equal(true);
      expect(writes).to.have.length(1);
      expect(writes[0]!.subarray(16).equals(A)).to.equal(true);
      expect(out.includes(A)).to.equal(false);
      expect(out.subarray(16).every((b) => b === 0)).to.equal(true);
    });

    it('READDIR: ., .., then every name with its current node, resumable at an offset', () => {
      const f = initialized();
      const names = (body: Buffer): Array<[string, number, number]> => {
        const list: Array<[string, number, number]> = [];
        for (let at = 0; at < body.length; ) {
          const len = body.readUInt32LE(at + 16);
          list.push([body.toString('latin1', at + 24, at + 24 + len), Number(body.readBigUInt64LE(at)), Number(body.readBigUInt64LE(at + 8))]);
          at += (24 + len + 7) & ~7;
        }
        return list;
      };
      const all = names(f.send(request(Op.READDIR, readBody(0, 4096)))!.body);
      expect(all).to.deep.equal([
        ['.', 1, 1],
        ['..', 1, 2],
        ['a', 2, 3],
        ['big', 3, 4],
        ['broken', 4, 5],
      ]);
      expect(names(f.send(request(Op.READDIR, readBody(3, 4096)))!.body).map((e) => e[0])).to.deep.equal(['big', 'broken']);
      // A buffer too small for the next entry: an empty reply, not a partial one.
      expect(f.send(request(Op.READDIR, readBody(0, 20)))!.length).to.equal(16);
      expect(f.send(request(Op.READDIRPLUS, readBody(0, 4096)))!.error).to.equal(-Errno.ENOSYS);
    });

    it('refuses writes with EROFS; OPEN, OPENDIR, FLUSH and unknown opcodes with ENOSYS; FORGET, BATCH_FORGET, INTERRUPT get no reply', () => {
      const f = initialized();
      for (const op of [Op.SETATTR, Op.WRITE, Op.CREATE, Op.MKDIR, Op.UNLINK, Op.RENAME, Op.RENAME2, Op.SETXATTR, Op.LINK, Op.SYMLINK]) {
        expect(f.send(request(op, Buffer.alloc(64), { nodeid: 2 }))!.error, `op ${op}`).to.equal(-Errno.EROFS);
      }
      for (const op of [Op.OPEN, Op.OPENDIR, Op.FLUSH, Op.GETXATTR, Op.LSEEK, 53, 99, 4096, 0xffffffff]) {
        expect(f.send(request(op, Buffer.alloc(64), { nodeid: 2 }))!.error, `op ${op}`).to.equal(-Errno.ENOSYS);
      }
      expect(f.send(request(Op.FORGET, u64(1), { nodeid: 2 }))).to.equal(null);
      expect(f.send(request(Op.BATCH_FORGET, Buffer.alloc(8)))).to.equal(null);
      expect(f.send(request(Op.INTERRUPT, u64(7)))).to.equal(null);
      expect(f.send(request(Op.STATFS))!.error).to.equal(0);
    });

    it('drops a superseded node exactly once when the kernel forgets its last lookup', () => {
      const f = initialized();
      f.send(request(Op.LOOKUP, cstring('a')));
      f.send(request(Op.LOOKUP, cstring('a')));
      const state = stateOf(f.d.table.get(2)!.shared!);
      Atomics.or(state, 0, 1); // what the main thread does when the name moves on
      const batch = Buffer.concat([Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]), u64(2), u64(1)]);
      f.send(request(Op.BATCH_FORGET, batch));
      expect(f.events.filter((e) => e.kind === 'dropped')).to.have.length(0);
      f.send(request(Op.FORGET, u64(5), { nodeid: 2 }));
      f.send(request(Op.FORGET, u64(1), { nodeid: 2 }));
      expect(f.events.filter((e) => e.kind === 'dropped')).to.deep.equal([{ kind: 'dropped', nodes: [2] }]);
    });

    it('a LOOKUP that meets a dropped node takes the pending update and answers the new one', () => {
      const f = initialized();
      forceDrop(stateOf(f.d.table.get(2)!.shared!));
      // The main thread posted the update but this thread has not drained it yet.
      f.queue.push({ kind: 'update', names: [['a', 5]], add: [f.node(5, Buffer.from('new'))], drop: [2] });
      const r = f.send(request(Op.LOOKUP, cstring('a')))!;
      expect(Number(r.body.readBigUInt64LE(0))).to.equal(5);
    });
  });

  describe('malformed and random requests', () => {
    it('answers what it can and never throws: short buffers, lying lengths, truncated bodies', () => {
      const f = initialized();
      for (let n = 0; n < IN_HEADER_BYTES; n++) {
        const r = f.send(request(Op.GETATTR, Buffer.alloc(0), { unique: 3n }), n);
        if (n < 16) expect(r, `${n} bytes`).to.equal(null);
        else expect(r, `${n} bytes`).to.deep.include({ error: -Errno.EIO, unique: 3n });
      }
      expect(f.send(request(Op.GETATTR, Buffer.alloc(16), { len: 9999 }))!.error).to.equal(-Errno.EIO);
      expect(f.send(request(Op.READ, Buffer.alloc(4), { nodeid: 2 }))!.error).to.equal(-Errno.EIO);
      expect(f.send(request(Op.INIT, Buffer.alloc(3)))!.error).to.equal(-Errno.EPROTO);
      expect(f.send(request(Op.LOOKUP, Buffer.from('a')))!.error, 'a name without its NUL still resolves').to.equal(0);
      // A batch that claims more entries than it carries: only the ones present count.
      const lying = Buffer.concat([Buffer.from([0xff, 0xff, 0, 0, 0, 0, 0, 0]), u64(2), u64(1)]);
      expect(f.send(request(Op.BATCH_FORGET, lying))).to.equal(null);
      expect(f.send(request(Op.FORGET, Buffer.alloc(2), { nodeid: 2 }))).to.equal(null);
      // Still serving normally.
      expect(f.send(request(Op.READ, readBody(0, 4096), { nodeid: 2 }))!.body.equals(A)).to.equal(true);
    });

    it('survives 20,000 random requests: exactly one reply to each that expects one, with its unique', () => {
      const f = initialized();
      // A small deterministic generator: a failure can be replayed.
      let seed = 0x9e3779b9;
      const rand = (n: number): number => {
        seed ^= seed << 13;
        seed ^= seed >>> 17;
        seed ^= seed << 5;
        return (seed >>> 0) % n;
      };
      const opcodes = [...Object.values(Op), 0, 53, 4096, 0xffffffff];
      const req = Buffer.alloc(REQUEST_BUFFER_BYTES);
      const out = Buffer.alloc(REPLY_BUFFER_BYTES);
      for (let i = 0; i < 20_000; i++) {
        const bodyLength = rand(3) === 0 ? rand(8) : rand(300);
        const body = randomBytes(bodyLength);
        if (rand(4) === 0) body.write('a\0', 0); // sometimes a real name
        const opcode = rand(3) === 0 ? rand(0x1_0000_0000) : opcodes[rand(opcodes.length)]!;
        const unique = BigInt(i + 1);
        const honest = rand(2) === 0;
        const msg = request(opcode, body, { unique, nodeid: [1, 2, 3, 4, rand(1000)][rand(5)], len: honest ? undefined : rand(400) });
        const length = rand(10) === 0 ? rand(msg.length + 1) : msg.length;
        msg.copy(req);
        let writes = 0;
        const io: FuseIo = {
          read: () => length,
          write: (buf, n) => {
            writes++;
            expect(buf.readUInt32LE(0)).to.equal(n);
            expect(buf.readBigUInt64LE(8)).to.equal(unique);
            const error = buf.readInt32LE(4);
            expect(error === 0 || Object.values(Errno).includes(-error as never), `errno ${error}`).to.equal(true);
          },
        };
        serveOne(f.d, io, req, out);
        const expectsReply = length >= 16 && !(length >= IN_HEADER_BYTES && NO_REPLY_OPS.has(opcode));
        expect(writes, `request ${i}: opcode ${opcode}, ${length} bytes`).to.equal(expectsReply ? 1 : 0);
        f.d.destroyed = false; // a random DESTROY would end a real thread; here the next request keeps coming
      }
      // The view survived: the real names still resolve and read.
      const r = f.send(request(Op.READ, readBody(0, 4096), { nodeid: 2 }))!;
      expect(r.body.equals(A)).to.equal(true);
    });
  });

  describe('property-based synthetic kernel requests (fast-check, shrinking to the smallest failing sequence)', () => {
    const KNOWN_ERRNOS = new Set<number>(Object.values(Errno));
    const NAMES = new Map([['a', 2], ['big', 3], ['broken', 4]]);
    // Bodies that look like what each opcode carries, and what it should never carry.
    const name = fc.oneof(
      fc.constantFrom('a', 'big', 'broken', 'nope', '', '.', '..', 'a/b', 'x'.repeat(4096)).map(cstring),
      fc.constantFrom('a', 'big').map((n) => Buffer.from(n)), // without its NUL
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    );
    const body = fc.oneof(
      name,
      fc.record({ offset: fc.oneof(fc.nat(300_000), fc.constant(2 ** 53 - 1)), size: fc.oneof(fc.nat(300_000), fc.constant(0xffffffff)) }).map(({ offset, size }) => readBody(offset, size)),
      fc.nat({ max: 2 ** 32 - 1 }).map(u64),
      fc.record({ major: fc.constantFrom(7, 6, 8, 0, 0xffffffff), minor: fc.nat(100) }).map(({ major, minor }) => initBody(major, minor)),
      fc.tuple(fc.nat(0xffff), fc.array(fc.tuple(fc.nat(10), fc.nat(5)), { maxLength: 5 })).map(([count, pairs]) => Buffer.concat([u64(count), ...pairs.flatMap(([id, n]) => [u64(id), u64(n)])])),
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
    );
    const opcode = fc.oneof(fc.constantFrom(...Object.values(Op)), fc.constantFrom(0, 53, 63, 64, 4096, 0xffffffff), fc.nat({ max: 2 ** 32 - 1 }));
    // How the bytes arrive: honest, cut short, or with a header length that lies.
    const framing = fc.oneof(fc.constant({ kind: 'honest' as const }), fc.record({ kind: fc.constant('short' as const), keep: fc.nat(60) }), fc.record({ kind: fc.constant('lying' as const), len: fc.nat({ max: 2 ** 32 - 1 }) }));
    const kernelRequest = fc.record({ opcode, body, nodeid: fc.oneof(fc.constantFrom(1, 2, 3, 4), fc.nat(1000), fc.constant(2 ** 53 - 1)), uid: fc.nat({ max: 2 ** 32 - 1 }), framing });

    it('any sequence of requests: exactly one reply (with its unique and a known errno) to each that expects one, and the view unchanged after', async () => {
      await check(
        fc.property(fc.boolean(), fc.array(kernelRequest, { minLength: 1, maxLength: 40 }), (initFirst, reqs) => {
          const f = initFirst ? initialized() : fixture();
          const req = Buffer.alloc(REQUEST_BUFFER_BYTES);
          const out = Buffer.alloc(REPLY_BUFFER_BYTES);
          reqs.forEach((r, i) => {
            const unique = BigInt(i + 100);
            const msg = request(r.opcode, r.body, { unique, nodeid: r.nodeid, uid: r.uid, len: r.framing.kind === 'lying' ? r.framing.len : undefined });
            const length = r.framing.kind === 'short' ? Math.min(r.framing.keep, msg.length) : msg.length;
            msg.copy(req);
            const replies: Buffer[] = [];
            serveOne(f.d, { read: () => length, write: (buf, n) => void replies.push(Buffer.from(buf.subarray(0, n))) }, req, out);
            const expectsReply = length >= 16 && !(length >= IN_HEADER_BYTES && NO_REPLY_OPS.has(r.opcode));
            expect(replies, `request ${i}`).to.have.length(expectsReply ? 1 : 0);
            for (const reply of replies) {
              expect(reply.readUInt32LE(0)).to.equal(reply.length);
              expect(reply.readBigUInt64LE(8)).to.equal(unique);
              const error = reply.readInt32LE(4);
              expect(error === 0 || KNOWN_ERRNOS.has(-error), `errno ${error}`).to.equal(true);
            }
            // What a READ reply carried is wiped once written.
            const used = replies[0]?.length ?? 16;
            expect(out.subarray(16, used).every((b) => b === 0)).to.equal(true);
            f.d.destroyed = false; // a DESTROY ends a real thread; here requests keep coming
          });
          // Nothing the requests said changed the view: the names, their nodes and their bytes.
          if (!f.d.initialized) f.send(request(Op.INIT, initBody(), { unique: 1n }));
          for (const [n, id] of NAMES) expect(f.d.table.byName(n)?.id, n).to.equal(id);
          expect(f.send(request(Op.READ, readBody(0, 4096), { nodeid: 2 }))!.body.equals(A)).to.equal(true);
        }),
        runs(200),
      );
    });

    it('LOOKUP of any bytes (with or without a NUL, up to 4 KiB): the entry only for a name in the view, ENOENT otherwise', async () => {
      await check(
        fc.property(name, (n) => {
          const f = initialized();
          const r = f.send(request(Op.LOOKUP, n))!;
          const end = n.indexOf(0);
          const wanted = n.toString('latin1', 0, end < 0 ? n.length : end);
          const id = NAMES.get(wanted);
          if (id === undefined) expect(r.error).to.equal(-Errno.ENOENT);
          else if (id === 4) expect(r.error, 'the unreadable version').to.equal(-Errno.EIO);
          else expect(Number(r.body.readBigUInt64LE(0))).to.equal(id);
        }),
        runs(300),
      );
    });

    it('READ at any offset and size: the bytes of the file at that offset, never more than asked, or an error', async () => {
      const read = fc.record({ node: fc.constantFrom(2, 3), offset: fc.oneof(fc.nat(BIG.length + 10), fc.constant(2 ** 53 - 1)), size: fc.oneof(fc.nat(300_000), fc.constant(0xffffffff)) });
      await check(
        fc.property(read, ({ node, offset, size }) => {
          const f = initialized();
          const r = f.send(request(Op.READ, readBody(offset, size), { nodeid: node }))!;
          expect(r.error).to.equal(0);
          const file = node === 2 ? A : BIG;
          expect(r.body.length).to.be.at.most(size);
          expect(r.body.equals(file.subarray(Math.min(offset, file.length), Math.min(offset, file.length) + r.body.length))).to.equal(true);
        }),
        runs(200),
      );
    });
  });
});
