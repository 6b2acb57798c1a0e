/**
 * A node session's stream as the dispatcher sees it, for unit tests that
 * drive a Dispatcher without gRPC: it records what the store writes (copies:
 * the dispatcher hands over buffers that the agent's cache zeroes once sealed,
 * and the wire would have copied them), and the test emits what the agent
 * sends ('data', 'end').
 */
import { EventEmitter } from 'node:events';
import type { StoreMessage } from '../../src/protocol/index.js';

export class FakeSessionStream extends EventEmitter {
  readonly written: StoreMessage[] = [];

  write(message: StoreMessage): boolean {
    this.written.push(structuredClone(message));
    return true;
  }

  end(): void {}
}
