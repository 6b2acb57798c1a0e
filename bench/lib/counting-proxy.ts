/**
 * A TCP relay in front of the store's node port that counts the bytes going
 * each way: what "bytes on the wire per rotation" means here is what crossed
 * this socket (TLS records, HTTP/2 frames, gRPC framing and the protobuf
 * message included), not the size of a decoded message. One relay per
 * simulated agent, so its count is that agent's and nobody else's.
 */
import net from 'node:net';

export interface CountingProxy {
  /** host:port the agent dials instead of the store. */
  target: string;
  /** Bytes from the store to the agent, and from the agent to the store, since start. */
  readonly toAgent: number;
  readonly toStore: number;
  close(): Promise<void>;
}

export async function startCountingProxy(storeHost: string, storePort: number): Promise<CountingProxy> {
  const sockets = new Set<net.Socket>();
  const counts = { toAgent: 0, toStore: 0 };
  const server = net.createServer((agent) => {
    const store = net.connect({ host: storeHost, port: storePort });
    sockets.add(agent).add(store);
    // Counted as they are relayed; pipe() keeps back-pressure, so nothing is counted that was not written on.
    agent.on('data', (chunk: Buffer) => (counts.toStore += chunk.length));
    store.on('data', (chunk: Buffer) => (counts.toAgent += chunk.length));
    agent.pipe(store);
    store.pipe(agent);
    const end = () => {
      agent.destroy();
      store.destroy();
      sockets.delete(agent);
      sockets.delete(store);
    };
    agent.on('error', end).on('close', end);
    store.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    target: `127.0.0.1:${port}`,
    get toAgent() {
      return counts.toAgent;
    },
    get toStore() {
      return counts.toStore;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
