/**
 * A grpc-js server interceptor that admits calls on their headers, before a
 * byte of the message is read (grpc-js reads the body only once the handler
 * asks for it): Join, the one call without a certificate, gets a bounded
 * number of slots and a bounded queue; every other call needs a verified
 * node certificate, and one node gets a bounded number of open calls.
 * Refused calls cost the store a header block, not a message.
 */
import * as grpc from '@grpc/grpc-js';

export interface CallGateLimits {
  maxConcurrentJoins: number;
  maxQueuedJoins: number;
  maxCallsPerNode: number;
}

export interface CallGateHooks {
  /** The node id of the call's verified client certificate, if any. */
  nodeOf(call: grpc.ServerInterceptingCallInterface): string | undefined;
  /** Called for every call's headers (the connection is past its handshake). */
  onCall(call: grpc.ServerInterceptingCallInterface): void;
}

export const JOIN_PATH = '/hush.v1.NodeService/Join';

const UNAUTHENTICATED: Parameters<grpc.ServerInterceptingCall['sendStatus']>[0] = {
  code: grpc.status.UNAUTHENTICATED,
  details: 'a valid node certificate issued by this cluster is required; join with `hush agent --token`',
};

/** Slots with a waiting line: a waiter gets the slot its predecessor releases. */
export class Slots {
  private used = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly size: number,
    private readonly queueSize: number,
  ) {}

  /**
   * Grants a slot now or later (`granted` gets the release function), or
   * returns undefined when slots and queue are full. The returned cancel
   * leaves the queue or releases the slot, whichever applies; it is idempotent.
   */
  take(granted: (release: () => void) => void): (() => void) | undefined {
    let release: (() => void) | undefined;
    let done = false;
    const grant = () => {
      let released = false;
      release = () => {
        if (released) return;
        released = true;
        // The slot passes to the first waiter, or frees up.
        const next = this.waiting.shift();
        if (next) next();
        else this.used--;
      };
      if (done) return release();
      granted(release);
    };
    const waiter = () => grant();
    if (this.used < this.size) {
      this.used++;
      grant();
    } else if (this.waiting.length < this.queueSize) {
      this.waiting.push(waiter);
    } else {
      return undefined;
    }
    return () => {
      done = true;
      const at = this.waiting.indexOf(waiter);
      if (at >= 0) this.waiting.splice(at, 1);
      release?.();
    };
  }
}

export function callGate(limits: CallGateLimits, hooks: CallGateHooks): grpc.ServerInterceptor {
  const joins = new Slots(limits.maxConcurrentJoins, limits.maxQueuedJoins);
  const perNode = new Map<string, number>();

  return (method, call) => {
    let finish: (() => void) | undefined;
    let finished = false;
    const done = () => {
      finished = true;
      finish?.();
      finish = undefined;
    };
    const intercepted: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, proceed) => {
            hooks.onCall(call);
            if (method.path === JOIN_PATH) {
              finish = joins.take(() => {
                if (!finished) proceed(metadata);
              });
              if (!finish) intercepted.sendStatus({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'the store is busy with other joins; try again shortly' });
              return;
            }
            const nodeId = hooks.nodeOf(call);
            if (!nodeId) return intercepted.sendStatus(UNAUTHENTICATED);
            const open = perNode.get(nodeId) ?? 0;
            if (open >= limits.maxCallsPerNode) {
              return intercepted.sendStatus({ code: grpc.status.RESOURCE_EXHAUSTED, details: `node ${nodeId} already has ${open} calls open; the limit is ${limits.maxCallsPerNode}` });
            }
            perNode.set(nodeId, open + 1);
            let released = false;
            finish = () => {
              if (released) return;
              released = true;
              const left = (perNode.get(nodeId) ?? 1) - 1;
              if (left > 0) perNode.set(nodeId, left);
              else perNode.delete(nodeId);
            };
            proceed(metadata);
          },
          // Called once the call is over however it ended: status sent, deadline, client cancel, connection lost.
          onCancel: done,
        }),
      sendStatus: (status, next) => {
        done();
        next(status);
      },
    });
    return intercepted;
  };
}
