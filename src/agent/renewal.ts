/**
 * Keeps the node certificate fresh. Node certificates are short-lived (24 h
 * by default) so a stolen one is worth little; at half of its remaining life
 * the agent makes a new key in memory, asks for a certificate over the
 * authenticated channel, and hands the result to the agent to switch to.
 * Failures retry with backoff; the old certificate stays in use meanwhile.
 */
import type { Logger } from '../log/index.js';
import { certFingerprint, createCsr, generateKeyPairAsync } from '../pki/index.js';
import { isServiceError, unary, type NodeClient } from '../protocol/index.js';
import { Backoff } from './backoff.js';
import { acceptCertificate, nextTrustedCa, renewalDelayMs, type NodeIdentity } from './node-identity.js';

export interface RenewerOptions {
  identity: () => NodeIdentity;
  client: () => NodeClient;
  /** Switch to the new identity (new channel, reopened session). */
  onRenewed: (identity: NodeIdentity) => void;
  log: Logger;
  timeoutMs?: number;
}

// setTimeout takes at most a signed 32-bit delay; longer waits are taken in steps.
const MAX_TIMER_MS = 2 ** 31 - 1;
const MIN_RETRY_MS = 250;

export class CertificateRenewer {
  readonly #opts: RenewerOptions;
  readonly #backoff = new Backoff({ baseMs: 1_000, capMs: 30_000 });
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(opts: RenewerOptions) {
    this.#opts = opts;
  }

  start(): void {
    this.#schedule(renewalDelayMs(this.#opts.identity()));
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** One renewal attempt; resolves with the new identity after it was handed over. */
  async renewNow(): Promise<NodeIdentity> {
    const current = this.#opts.identity();
    const { keyPem } = await generateKeyPairAsync();
    const client = this.#opts.client();
    const response = await unary(client.Renew.bind(client), { csr_pem: createCsr(keyPem, current.nodeId) }, this.#opts.timeoutMs ?? 15_000);
    // After a CA rotation the new certificate comes from the new CA, which the agent trusts from then on (node-identity.ts).
    const caPem = nextTrustedCa(current.caPem, response.ca_pem, response.ca_cross_pem);
    const renewed = acceptCertificate(current.nodeId, caPem, keyPem, response.certificate_pem);
    if (this.#stopped) return renewed;
    this.#opts.onRenewed(renewed);
    return renewed;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    if (delayMs > MAX_TIMER_MS) {
      this.#timer = setTimeout(() => this.#schedule(renewalDelayMs(this.#opts.identity())), MAX_TIMER_MS);
    } else {
      this.#timer = setTimeout(() => void this.#attempt(), delayMs);
    }
  }

  async #attempt(): Promise<void> {
    try {
      const renewed = await this.renewNow();
      this.#backoff.reset();
      this.#opts.log.info({ nodeId: renewed.nodeId, notAfter: renewed.notAfter.toISOString(), ca: certFingerprint(renewed.caPem) }, 'node certificate renewed');
      this.#schedule(renewalDelayMs(renewed));
    } catch (err) {
      if (this.#stopped) return;
      const notAfter = this.#opts.identity().notAfter;
      // Never wait past a good share of the remaining lifetime: short test certificates must get several tries.
      const left = notAfter.getTime() - Date.now();
      const retryInMs = Math.max(MIN_RETRY_MS, left > 0 ? Math.min(this.#backoff.next(), left / 4) : this.#backoff.next());
      const reason = isServiceError(err) ? err.details : (err as Error).message;
      if (notAfter.getTime() <= Date.now()) {
        this.#opts.log.error({ reason, notAfter: notAfter.toISOString(), retryInMs }, 'node certificate EXPIRED and renewal failed: the store will refuse this node until a renewal succeeds or the agent rejoins');
      } else {
        this.#opts.log.warn({ reason, notAfter: notAfter.toISOString(), retryInMs }, 'node certificate renewal failed; retrying');
      }
      this.#schedule(retryInMs);
    }
  }
}
