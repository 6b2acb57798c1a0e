/**
 * The node port's TCP listener. grpc-js would accept every connection and
 * wait for a TLS handshake as long as the peer likes; here we accept the
 * sockets ourselves, count them (in all and per IP address), refuse what is
 * over the limits before TLS costs anything, and close a connection that has
 * not made its first call within the handshake timeout. Sockets that pass
 * are handed to the gRPC server (grpc-js's connection injector), which does
 * TLS and HTTP/2 on them as if it had accepted them itself.
 */
import net from 'node:net';
import type { Logger } from '../log/index.js';

export interface ConnectionGateLimits {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  handshakeTimeoutMs: number;
}

interface Tracked {
  socket: net.Socket;
  address: string;
  timer: NodeJS.Timeout | undefined;
}

/** How often, at most, refused connections are logged (a flood must not turn into a log flood). */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

export class ConnectionGate {
  private readonly server: net.Server;
  /** "address:port" of the peer → its connection; grpc-js reports calls by the same key. */
  private readonly connections = new Map<string, Tracked>();
  private readonly perAddress = new Map<string, number>();
  private refused = { total: 0, perAddress: 0, handshake: 0 };
  private lastRefusalLog = 0;

  constructor(
    private readonly limits: ConnectionGateLimits,
    private readonly inject: (socket: net.Socket) => void,
    private readonly log: Logger,
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  /** The connection made a call: it is past its handshake. */
  markActive(remoteAddress: string | undefined, remotePort: number | undefined): void {
    const tracked = this.connections.get(`${remoteAddress}:${remotePort}`);
    if (tracked?.timer) {
      clearTimeout(tracked.timer);
      tracked.timer = undefined;
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const { socket } of this.connections.values()) socket.destroy();
    });
  }

  private accept(socket: net.Socket): void {
    const address = socket.remoteAddress;
    if (!address) return void socket.destroy();
    const fromAddress = this.perAddress.get(address) ?? 0;
    if (this.connections.size >= this.limits.maxConnections) return this.refuse(socket, 'total');
    if (fromAddress >= this.limits.maxConnectionsPerAddress) return this.refuse(socket, 'perAddress');

    const key = `${address}:${socket.remotePort}`;
    const tracked: Tracked = { socket, address, timer: undefined };
    tracked.timer = setTimeout(() => {
      this.count('handshake');
      socket.destroy();
    }, this.limits.handshakeTimeoutMs);
    tracked.timer.unref();
    this.connections.set(key, tracked);
    this.perAddress.set(address, fromAddress + 1);
    socket.once('close', () => {
      if (tracked.timer) clearTimeout(tracked.timer);
      this.connections.delete(key);
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.perAddress.set(address, left);
      else this.perAddress.delete(address);
    });
    // Errors on a half-open socket (resets) are the peer's business; without a listener they would crash the process.
    socket.on('error', () => undefined);
    this.inject(socket);
  }

  private refuse(socket: net.Socket, why: 'total' | 'perAddress'): void {
    // resetAndDestroy: an RST frees the fd at once, no TIME_WAIT on our side.
    socket.on('error', () => undefined);
    socket.resetAndDestroy();
    this.count(why);
  }

  private count(why: keyof ConnectionGate['refused']): void {
    this.refused[why]++;
    const now = Date.now();
    if (now - this.lastRefusalLog < REFUSAL_LOG_INTERVAL_MS) return;
    this.lastRefusalLog = now;
    this.log.warn(
      {
        overTotal: this.refused.total,
        overPerAddress: this.refused.perAddress,
        handshakeTimeouts: this.refused.handshake,
        open: this.connections.size,
        limits: this.limits,
      },
      'node port closed connections over its limits (counts since the last such message)',
    );
    this.refused = { total: 0, perAddress: 0, handshake: 0 };
  }
}
