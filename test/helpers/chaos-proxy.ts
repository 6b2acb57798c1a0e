/**
 * A TCP proxy that misbehaves on command, put between agents and the store's
 * node port to play a bad network (plain `net`, in the test's process; it
 * never touches a FUSE mount, so it may share the process with anything).
 *
 * Faults, each applied to both directions of every connection:
 * - blackhole: connections are accepted and stay open, but nothing is
 *   forwarded (bytes, FIN and resets are held back), like a partition during
 *   which TCP keeps retransmitting. heal() delivers what was held, in order:
 *   a connection that survived the partition carries on, as it would on a
 *   real network.
 * - delay: every chunk waits `delayMs` before it is forwarded.
 * - fragment: every chunk is split at random points (down to single bytes)
 *   and each piece waits 0..`maxDelayMs` before it is written. TCP cannot
 *   reorder what a connection delivers, so this is what "reorder" can mean
 *   on one connection: the receiver sees other segment boundaries (records
 *   and frames cut and coalesced anywhere) at other times than were sent.
 *   Order within a direction is kept (the pieces are written one after the
 *   other), so a correct peer must cope.
 * - halfClose(direction): ends one direction of every open connection (a FIN
 *   to that side) and drops what that direction carries afterwards, while the
 *   other direction keeps flowing.
 * - heal({ strand: true }): the fault ends for new connections only; the
 *   ones open now stay cut, silently, for good.
 * - reset(): destroys every open connection (an RST to both sides).
 * New connections get whatever fault is set when their bytes arrive.
 */
import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export type Direction = 'toStore' | 'toAgent';

interface Mode {
  blackhole: boolean;
  delayMs: number;
  fragment?: { maxDelayMs: number };
}

/** One direction of one connection: a strictly ordered queue of writes and the final end/destroy. */
class Pipe {
  #chain: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(
    private readonly to: Socket,
    private readonly proxy: ChaosProxy,
    private readonly connection: { stranded: boolean },
  ) {}

  /** Forwards `chunk` after every earlier piece, applying the proxy's mode at the time it is handled. */
  push(chunk: Buffer): void {
    this.#chain = this.#chain.then(async () => {
      await this.proxy.passable();
      if (this.#closed || this.connection.stranded) return;
      const mode = this.proxy.mode;
      if (mode.delayMs > 0) await sleep(mode.delayMs);
      if (!mode.fragment) return this.#write(chunk);
      for (const piece of splitRandomly(chunk)) {
        await sleep(Math.floor(Math.random() * (mode.fragment.maxDelayMs + 1)));
        if (this.#closed) return;
        this.#write(piece);
      }
    });
  }

  /** The source ended (FIN) or died (RST): pass that on after the bytes before it. */
  finish(how: 'end' | 'destroy'): void {
    this.#chain = this.#chain.then(async () => {
      await this.proxy.passable();
      if (this.#closed || this.connection.stranded) return;
      this.#closed = true;
      if (how === 'end') this.to.end();
      else this.to.destroy();
    });
  }

  /** Half-close: a FIN now, and nothing more this way. */
  endNow(): void {
    this.#closed = true;
    this.to.end();
  }

  #write(piece: Buffer): void {
    if (!this.#closed && !this.to.destroyed) this.to.write(piece);
  }
}

interface Connection {
  /** Cut for good: what it carries vanishes (see heal). */
  stranded: boolean;
  agent: Socket;
  store: Socket;
  toStore: Pipe;
  toAgent: Pipe;
}

export class ChaosProxy {
  mode: Mode = { blackhole: false, delayMs: 0 };
  /** Connections accepted in all (a reconnect shows up here). */
  accepted = 0;
  readonly #server: Server;
  readonly #connections = new Set<Connection>();
  #healed: Promise<void> = Promise.resolve();
  #heal: (() => void) | undefined;

  private constructor(private readonly target: { host: string; port: number }) {
    this.#server = createServer({ allowHalfOpen: true }, (agent) => this.#accept(agent));
  }

  static async start(target: { host: string; port: number }): Promise<ChaosProxy> {
    const proxy = new ChaosProxy(target);
    proxy.#server.listen(0, '127.0.0.1');
    await once(proxy.#server, 'listening');
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get openConnections(): number {
    return this.#connections.size;
  }

  /** Resolves when bytes may flow (at once unless blackholed). */
  passable(): Promise<void> {
    return this.#healed;
  }

  blackhole(): void {
    if (this.mode.blackhole) return;
    this.mode = { ...this.mode, blackhole: true };
    this.#healed = new Promise((resolve) => (this.#heal = resolve));
  }

  /**
   * Ends the blackhole (delivering what it held) and every other fault. With
   * `strand`, the connections open now stay cut for good instead: nothing they
   * carry, held or new, ever arrives, and neither end hears of it (as when a
   * middlebox lost their state, or the peer that accepted them froze); only
   * new connections get through.
   */
  heal(opts: { strand?: boolean } = {}): void {
    if (opts.strand) for (const c of this.#connections) c.stranded = true;
    this.mode = { blackhole: false, delayMs: 0 };
    this.#heal?.();
    this.#heal = undefined;
    this.#healed = Promise.resolve();
  }

  delay(delayMs: number): void {
    this.mode = { ...this.mode, delayMs };
  }

  fragment(maxDelayMs: number): void {
    this.mode = { ...this.mode, fragment: { maxDelayMs } };
  }

  halfClose(direction: Direction): void {
    for (const c of this.#connections) c[direction].endNow();
  }

  reset(): void {
    for (const c of this.#connections) {
      c.agent.destroy();
      c.store.destroy();
    }
  }

  async close(): Promise<void> {
    this.heal();
    this.reset();
    this.#server.close();
    await once(this.#server, 'close');
  }

  #accept(agent: Socket): void {
    this.accepted++;
    // allowHalfOpen: a FIN from one side must not end the other direction; the proxy decides that.
    const store = createConnection({ ...this.target, allowHalfOpen: true });
    const c = { stranded: false, agent, store } as Connection;
    c.toStore = new Pipe(store, this, c);
    c.toAgent = new Pipe(agent, this, c);
    this.#connections.add(c);
    const wire = (from: Socket, pipe: Pipe) => {
      from.on('data', (chunk: Buffer) => pipe.push(chunk));
      from.on('end', () => pipe.finish('end'));
      from.on('error', () => pipe.finish('destroy'));
    };
    wire(agent, c.toStore);
    wire(store, c.toAgent);
    const forget = () => {
      if (agent.destroyed && store.destroyed) this.#connections.delete(c);
    };
    agent.on('close', forget);
    store.on('close', forget);
  }
}

/** `chunk` cut at 1..8 random points (fewer for tiny chunks); single bytes included now and then. */
function splitRandomly(chunk: Buffer): Buffer[] {
  if (chunk.length <= 1) return [chunk];
  const cuts = new Set<number>();
  const count = 1 + Math.floor(Math.random() * Math.min(8, chunk.length - 1));
  while (cuts.size < count) cuts.add(1 + Math.floor(Math.random() * (chunk.length - 1)));
  if (chunk.length > 2 && Math.random() < 0.3) cuts.add(1); // a 1-byte first piece: a TLS record header cut short
  const points = [0, ...[...cuts].sort((a, b) => a - b), chunk.length];
  return points.slice(1).map((end, i) => chunk.subarray(points[i]!, end));
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
