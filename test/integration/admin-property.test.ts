/**
 * The admin API under property-based bad input (fast-check), against one
 * real store process on its admin unix socket: every documented operation
 * (the OpenAPI list request-shape.ts enforces), native `/v1/...` routes and
 * the Docker-compatible ones at the root and under `/v1.41`, with path
 * parameters that are real objects, unknown names or no names at all, bodies
 * built from the operation's own field names mixed with unknown ones and
 * wrong types (deep nesting, values around the 500 KiB limit,
 * `__proto__`/`constructor` keys), odd content types and query parameters.
 *
 * The property: never a 5xx; a refusal carries a JSON error body (ours
 * `{error: {code, message}}`, Docker's `{message}` on its routes); a refused
 * request leaves the store's revision where it was; the store stays up.
 * fast-check shrinks a failure and prints the smallest request it found.
 *
 * HUSH_PROPERTY_SCALE multiplies the runs (`npm run test:security`);
 * HUSH_FUZZ_SEED replays.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { documentedOperations, openApiDocument } from '../../src/api/index.js';
import { revisionOf, startSeededStore, type SeededStore } from '../helpers/admin-routes.js';
import type { StoreProcess } from '../helpers/hush-process.js';
import { sendOnce, type OnceReply } from '../helpers/http.js';
import { check, runs } from '../helpers/property.js';

interface Operation {
  method: string;
  /** The documented path with `{param}` placeholders. */
  path: string;
  docker: boolean;
  query: string[];
  /** The top-level property names of the operation's JSON body schema; undefined when it takes no body. */
  fields: string[] | undefined;
}

type Schema = { $ref?: string; properties?: Record<string, unknown>; allOf?: Schema[] };

/** The body fields of every documented operation, read from the OpenAPI document the store serves. */
function operations(): Operation[] {
  const doc = openApiDocument() as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Schema }> } }>>; components: { schemas: Record<string, Schema> } };
  const fieldsOf = (schema: Schema): string[] => {
    if (schema.$ref) return fieldsOf(doc.components.schemas[schema.$ref.replace('#/components/schemas/', '')]!);
    return [...Object.keys(schema.properties ?? {}), ...(schema.allOf ?? []).flatMap(fieldsOf)];
  };
  return documentedOperations().map((op) => {
    const body = doc.paths[op.path]![op.method.toLowerCase()]!.requestBody;
    return { ...op, fields: body ? fieldsOf(body.content['application/json']!.schema) : undefined };
  });
}

const OPERATIONS = operations();
/** Every name that is not a field of any operation's body, and names that poke at object prototypes. */
const UNKNOWN_FIELDS = ['junk', 'Name ', 'NAME', 'value', 'secret', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', ''];
const UNKNOWN_QUERY = ['junk', 'filters', 'limit', 'force', 'version', '__proto__', 'constructor', 'name', ''];

/** Objects seedAdminObjects created, so some requests reach a real object. */
const EXISTING = ['existing', 'svc', 'n1', 'c1', 'proj', 'proj_k'];
const pathParam = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...EXISTING) },
  fc.stringMatching(/^[a-z][a-z0-9_-]{0,30}$/).map(encodeURIComponent),
  fc.constantFrom('..', '.', '%2e%2e', '..%2F..%2Fetc', 'a%2Fb', '%2F', '%ff', '%', '%zz', '%00', 'a%20b', '*', '-rf', '__proto__', 'constructor'),
  fc.integer({ min: 65, max: 20_000 }).map((n) => 'x'.repeat(n)),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).map(encodeURIComponent),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }).map((s) => encodeURIComponent(s).replace(/%25/g, '%')),
);

/** A JSON value of the wrong kind for most fields, or of the right kind with junk in it. */
const leaf = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom('', 'existing', 'svc', 'n1', 'proj', 'admin', 'auditor', 'node.labels.zone==a', 'c2VjcmV0', '!!not base64!!', -1, 0, 1e308, 2 ** 53, true, null),
  fc.integer({ min: 1, max: 700 * 1024 }).map((n) => 'A'.repeat(n)), // base64 around the 500 KiB value limit (683 KiB of text is 500 KiB of value)
);
/** Deep nesting as text (JSON.stringify would overflow the stack first), and as a value inside a field (depth a stringify survives). */
const nestedText = fc.integer({ min: 1, max: 20_000 }).map((d) => `${'['.repeat(d)}${'{"a":'.repeat(d % 7)}1${'}'.repeat(d % 7)}${']'.repeat(d)}`);
const nested = fc.integer({ min: 1, max: 1_000 }).map((d) => JSON.parse(`${'['.repeat(d)}${']'.repeat(d)}`) as unknown);

function bodyFor(op: Operation): fc.Arbitrary<string | undefined> {
  const names = [...(op.fields ?? []), ...(op.fields ?? []), ...UNKNOWN_FIELDS];
  const object = fc.dictionary(fc.constantFrom(...names), fc.oneof({ weight: 4, arbitrary: leaf }, nested, fc.dictionary(fc.constantFrom(...names), leaf, { maxKeys: 3 })), { maxKeys: 5 });
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant(undefined) },
    { weight: 5, arbitrary: object.map((o) => JSON.stringify(o)) },
    fc.jsonValue().map((v) => JSON.stringify(v)),
    nestedText,
    fc.constantFrom('', '{', 'null', '[]', '{}', '"x"', '{"a":1,"a":2}', '{"__proto__": {"admin": true}}', '{"constructor": {"prototype": {"x": 1}}}'),
    fc.string({ maxLength: 64 }),
  );
}

const CONTENT_TYPES = ['application/json', 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', undefined];

interface AdminRequest {
  method: string;
  path: string;
  docker: boolean;
  query: string;
  body: string | undefined;
  contentType: string | undefined;
}

const adminRequest: fc.Arbitrary<AdminRequest> = fc
  .constantFrom(...OPERATIONS)
  .chain((op) =>
    fc.record({
      op: fc.constant(op),
      method: fc.oneof({ weight: 5, arbitrary: fc.constant(op.method) }, fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH')),
      prefix: op.docker ? fc.constantFrom('', '/v1.41') : fc.constant(''),
      params: fc.array(pathParam, { minLength: 2, maxLength: 2 }),
      query: fc.oneof({ weight: 2, arbitrary: fc.constant([] as [string, string][]) }, fc.array(fc.tuple(fc.constantFrom(...op.query, ...UNKNOWN_QUERY), fc.oneof(fc.string({ maxLength: 16 }), fc.constantFrom('1', '0', '-1', '{"name":["x"]}', '{', 'x'.repeat(5000)))), { minLength: 1, maxLength: 3 })),
      body: bodyFor(op),
      contentType: fc.constantFrom(...CONTENT_TYPES),
    }),
  )
  .map(({ op, method, prefix, params, query, body, contentType }) => {
    let i = 0;
    const path = prefix + op.path.replace(/\{[^}]+\}/g, () => params[i++]!);
    const q = query.map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`).join('&');
    const request = { method, path, docker: op.docker, query: q, body, contentType };
    // fast-check prints the (shrunk) counterexample with this: a 600 KiB body cut to something readable.
    return Object.assign(request, { [fc.toStringMethod]: () => describeRequest(request) });
  });

/**
 * One request on its own connection. A store that refuses a large body may
 * answer and close before the body is all sent: the caller then sees the
 * connection close (EPIPE/ECONNRESET) instead of a status.
 */
function send(socketPath: string, r: AdminRequest): Promise<OnceReply> {
  return sendOnce(socketPath, { ...r, path: r.query ? `${r.path}?${r.query}` : r.path });
}

/** The request as a replayable line for the failure message (long strings cut). */
function describeRequest(r: AdminRequest): string {
  const cut = (s: string) => (s.length > 300 ? `${s.slice(0, 300)}…(${s.length} chars)` : s);
  return `${r.method} ${cut(r.path)}${r.query ? `?${cut(r.query)}` : ''} content-type=${r.contentType ?? '(none)'} body=${r.body === undefined ? '(none)' : cut(r.body)}`;
}

describe('admin API: property-based bad input on every documented route (integration)', function () {
  this.timeout(Math.max(180_000, runs(300) * 200));
  let seeded: SeededStore | undefined;
  let socket: string;
  let store: StoreProcess | undefined;

  before(async () => {
    seeded = await startSeededStore();
    ({ socket, store } = seeded);
  });
  after(async () => seeded?.stop());

  it('never a 5xx; a refusal has a JSON error body and leaves the revision unchanged; the store stays up', async () => {
    expect(OPERATIONS.length, 'the documented operations').to.be.at.least(45);
    expect(OPERATIONS.filter((op) => op.fields && op.fields.length > 0).length, 'operations whose body fields the generator uses').to.be.at.least(12);
    const byStatus = new Map<number | 'closed', number>();
    await check(
      fc.asyncProperty(adminRequest, async (r) => {
        const where = describeRequest(r);
        const before = await revisionOf(socket!);
        const reply = await send(socket!, r);
        expect(store!.child.exitCode, `the store exited after ${where}; output:\n${store!.output().slice(-2000)}`).to.equal(null);
        if ('closed' in reply) {
          // The store may answer a refusal before reading a large body it will not take (past the limit, or on a route
          // that takes none) and close: the client's write then fails. A small body is always read and answered.
          expect(Buffer.byteLength(r.body ?? ''), `${where}: connection closed (${reply.closed})`).to.be.at.least(64 * 1024);
          byStatus.set('closed', (byStatus.get('closed') ?? 0) + 1);
        } else {
          byStatus.set(reply.status, (byStatus.get(reply.status) ?? 0) + 1);
          expect(reply.status, `${where}: ${reply.text.slice(0, 300)}`).to.be.within(200, 499);
          if (reply.status >= 400 && r.method !== 'HEAD') {
            let parsed: { error?: { code?: unknown; message?: unknown }; message?: unknown };
            try {
              parsed = JSON.parse(reply.text) as typeof parsed;
            } catch {
              throw new Error(`${where}: ${reply.status} with a body that is not JSON: ${reply.text.slice(0, 300)}`);
            }
            if (parsed.error !== undefined) {
              expect(parsed.error.code, `${where}: ${reply.text.slice(0, 300)}`).to.be.a('string').and.not.equal('');
              expect(parsed.error.message, `${where}: ${reply.text.slice(0, 300)}`).to.be.a('string').and.not.equal('');
            } else {
              // Docker's dialect, on the Docker-compatible routes only.
              expect(r.docker, `${where}: an error body without {error: {code, message}}: ${reply.text.slice(0, 300)}`).to.equal(true);
              expect(parsed.message, `${where}: ${reply.text.slice(0, 300)}`).to.be.a('string').and.not.equal('');
            }
          }
        }
        if ('closed' in reply || reply.status >= 400) expect(await revisionOf(socket!), `${where}: refused, but the revision moved`).to.equal(before);
      }),
      runs(300),
    );
    console.log(`      by status: ${JSON.stringify(Object.fromEntries([...byStatus].sort(([a], [b]) => String(a).localeCompare(String(b)))))}`);
    expect(store!.child.exitCode, 'the store is still running').to.equal(null);
    expect(await revisionOf(socket!)).to.be.a('number');
    const refused = [...byStatus].filter(([s]) => s === 'closed' || s >= 400).reduce((n, [, c]) => n + c, 0);
    const served = [...byStatus].filter(([s]) => s !== 'closed' && s < 400).reduce((n, [, c]) => n + c, 0);
    expect(refused, 'refusals').to.be.greaterThan(0);
    expect(served, 'requests served (the generator also reaches routes that act)').to.be.greaterThan(0);
  });
});
