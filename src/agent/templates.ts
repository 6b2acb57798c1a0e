/**
 * Rendering template grants on the node. The rendered file is a version of
 * its own, sealed like a delivered secret: rendered once per set of input
 * versions (the template's and each referenced secret's), so a rotation of
 * any input makes the next lookup render a new version, and an open file
 * keeps the version it opened. Plaintext exists only while rendering:
 * the template, each value and the result are zeroed once sealed.
 *
 * A template may use only the secrets granted to its own service (acl
 * checks it at grant time; the agent checks it again here, since a later
 * version of the template could reference something else). When it cannot
 * be rendered (a reference not granted or not here yet, a syntax error) the
 * last good rendering stays, and the file is absent if there is none.
 */
import { parseTemplate, type Grant } from '../acl/index.js';
import type { Logger } from '../log/index.js';
import type { SecretVersion } from './secret-version.js';

export interface TemplateInputs {
  /** The current version of a secret the node holds. */
  get(name: string): SecretVersion | undefined;
  /** Seals rendered bytes as a version (the cache's key). */
  seal(info: { name: string; version: number; createdAt: Date; mtime: Date }, plaintext: Uint8Array): SecretVersion;
}

interface Rendered {
  inputs: string;
  version: SecretVersion;
}

export class TemplateRenderer {
  readonly #rendered = new Map<string, Rendered>();

  constructor(
    private readonly inputs: TemplateInputs,
    private readonly log: Logger,
  ) {}

  /** The current rendering of `grant` (a template grant of `service`, whose grants are `grants`). */
  render(service: string, grant: Grant, grants: readonly Grant[]): SecretVersion | undefined {
    // Not a secret name (no "/" in those): the AAD of a rendered version never matches a delivered one.
    const key = `template/${service}/${grant.target}`;
    const previous = this.#rendered.get(key);
    const template = this.inputs.get(grant.source);
    if (!template) return previous?.version;
    const text = template.readAll();
    try {
      const parts = parseTemplate(text.toString('utf8'), grant.source);
      const allowed = new Set(grants.filter((g) => !g.template).map((g) => g.source));
      const values = new Map<string, SecretVersion>();
      for (const part of parts) {
        if (!('secret' in part)) continue;
        if (!allowed.has(part.secret)) throw new Error(`it references "${part.secret}", which service "${service}" is not granted`);
        const value = this.inputs.get(part.secret);
        if (!value) throw new Error(`"${part.secret}" has not arrived on this node`);
        values.set(part.secret, value);
      }
      const inputs = [`${grant.source}@${template.version}`, ...[...values.values()].map((v) => `${v.name}@${v.version}`)].join(',');
      if (previous?.inputs === inputs) return previous.version;

      const chunks: Buffer[] = [];
      try {
        for (const part of parts) chunks.push('secret' in part ? values.get(part.secret)!.readAll() : Buffer.from(part.text, 'utf8'));
        const output = Buffer.concat(chunks);
        try {
          const now = Date.now();
          // mtime only grows: the kernel drops a file's cached pages when its mtime or size changes.
          const mtime = new Date(Math.max(now, (previous?.version.mtime.getTime() ?? 0) + 1));
          const version = this.inputs.seal({ name: key, version: (previous?.version.version ?? 0) + 1, createdAt: new Date(now), mtime }, output);
          this.#rendered.set(key, { inputs, version });
          this.log.info({ service, target: grant.target, inputs }, 'rendered a template');
          return version;
        } finally {
          output.fill(0);
        }
      } finally {
        for (const chunk of chunks) chunk.fill(0);
      }
    } catch (err) {
      // The reason names secrets and positions, never text or values.
      this.log.warn({ service, target: grant.target, err: (err as Error).message }, 'cannot render a template; keeping the last rendering');
      return previous?.version;
    } finally {
      text.fill(0);
    }
  }

  /** Forgets renderings of services no longer here. */
  retain(services: ReadonlySet<string>): void {
    for (const key of this.#rendered.keys()) if (!services.has(key.split('/')[1]!)) this.#rendered.delete(key);
  }

  clear(): void {
    this.#rendered.clear();
  }
}
