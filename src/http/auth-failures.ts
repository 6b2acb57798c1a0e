/**
 * A lockout for failed client authentication on an HTTPS listener (the
 * store's admin API). A failure is a TLS handshake that ends in a TLS error
 * (no certificate, one from another CA, an expired one, TLS below 1.3), or a
 * request answered 401 (a certificate of the CA that is not, or no longer,
 * admitted: revoked, or not on record). After `maxFailures` of them from one
 * address within a minute, that address's new connections are closed before
 * TLS for `lockoutMs`, and the lockout is logged once (address and count;
 * nothing of the certificate). Dropped connections and handshake timeouts are
 * not failures: a TCP health check or a slow link is not a wrong credential,
 * and slow clients have their own timeouts (listen.ts).
 */
import type { RequestListener } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { HushError } from '../errors/index.js';
import { log } from '../log/index.js';
import { AddressLockout } from './address-lockout.js';

export interface AuthFailureLimits {
  /** Failures from one address within AUTH_FAILURE_WINDOW_MS that lock it out; 0 turns the lockout off. */
  maxFailures: number;
  /** How long a locked-out address's connections are refused. */
  lockoutMs: number;
}

export const AUTH_FAILURE_WINDOW_MS = 60_000;

/**
 * 20 a minute: a client with a wrong certificate that retries once a second
 * is stopped within a minute, while a person retrying by hand never is; 30 s
 * keeps an honest client stuck behind another's lockout waiting briefly.
 */
export const DEFAULT_AUTH_FAILURE_LIMITS: AuthFailureLimits = { maxFailures: 20, lockoutMs: 30_000 };

/** `given` over the defaults (unset fields keep theirs); throws on a value that is not a whole number (failures from 0, lockout from 1 ms). */
export function resolveAuthFailureLimits(given: Partial<AuthFailureLimits> = {}): AuthFailureLimits {
  const maxFailures = given.maxFailures ?? DEFAULT_AUTH_FAILURE_LIMITS.maxFailures;
  const lockoutMs = given.lockoutMs ?? DEFAULT_AUTH_FAILURE_LIMITS.lockoutMs;
  if (!Number.isSafeInteger(maxFailures) || maxFailures < 0) throw new HushError('bad_request', `admin authentication failures must be a whole number from 0 (off), not ${maxFailures}`);
  if (!Number.isSafeInteger(lockoutMs) || lockoutMs < 1) throw new HushError('bad_request', `admin authentication lockout must be a whole number of ms above 0, not ${lockoutMs}`);
  return { maxFailures, lockoutMs };
}

/** Handshake errors that say nothing about the client's credentials. */
const NOT_AN_AUTH_FAILURE = new Set(['ECONNRESET', 'EPIPE', 'ERR_TLS_HANDSHAKE_TIMEOUT', 'ETIMEDOUT']);

export class AuthFailureGuard {
  private readonly lockout: AddressLockout;
  /** Each raw connection's peer address, recorded before TLS (a failed handshake's socket no longer knows it). */
  private readonly addresses = new WeakMap<Socket, string>();

  constructor(private readonly limits: AuthFailureLimits) {
    this.lockout = new AddressLockout({ maxFailures: limits.maxFailures, windowMs: AUTH_FAILURE_WINDOW_MS, lockMs: limits.lockoutMs });
  }

  /** Refuses locked-out addresses and counts failed handshakes on `server`. */
  attach(server: HttpsServer): void {
    // Prepended so that a locked-out connection is closed before the TLS layer wraps it: no handshake is spent on it.
    server.prependListener('connection', (socket: Socket) => {
      const address = socket.remoteAddress;
      if (!address) return;
      if (this.lockout.check(address)) socket.destroy();
      else this.addresses.set(socket, address);
    });
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      // A certificate TLS 1.3 turns down after the client's Finished (another CA, expired) destroys the
      // socket with no error of its own: Node reports "socket hang up" (ECONNRESET) and leaves the reason
      // in authorizationError. A missing certificate or TLS 1.2 is a TLS error code.
      if (!socket.authorizationError && NOT_AN_AUTH_FAILURE.has(err.code ?? '')) return;
      this.failed(this.addressOf(socket));
    });
  }

  /**
   * The address of a failed handshake's connection. The TLS socket is
   * destroyed by then and has forgotten its peer; the raw socket it wrapped
   * (its `_parent`, Node's name) was recorded at 'connection'.
   */
  private addressOf(socket: TLSSocket): string | undefined {
    const raw = (socket as TLSSocket & { _parent?: Socket })._parent;
    return (raw && this.addresses.get(raw)) ?? socket.remoteAddress;
  }

  /** `app`, with each request answered 401 counted as a failure of its address. */
  wrap(app: RequestListener): RequestListener {
    return (req, res) => {
      const address = req.socket.remoteAddress;
      res.once('finish', () => {
        if (res.statusCode === 401) this.failed(address);
      });
      app(req, res);
    };
  }

  private failed(address: string | undefined): void {
    if (!address) return;
    const failures = this.lockout.failed(address);
    if (failures !== undefined) {
      log.warn(
        { address, failures, windowMs: AUTH_FAILURE_WINDOW_MS, lockoutMs: this.limits.lockoutMs },
        'client authentication failed again and again from one address on the admin HTTPS listener: its connections are refused for a while (a client with a wrong or revoked certificate, or someone probing)',
      );
    }
  }
}
