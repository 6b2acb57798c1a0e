/**
 * Every documented admin route with real objects behind its path parameters,
 * for the suites that throw bad input at all of them (admin-input,
 * admin-fuzz): a refusal must come from the input, not from a 404 for a name
 * nobody created, and a refused request must change nothing.
 */
import { expect } from 'chai';
import { documentedOperations } from '../../src/api/index.js';
import { join } from 'node:path';
import { call, closeClients } from './http.js';
import { startStoreProcess, stopProcess, type StoreProcess } from './hush-process.js';
import { removeDir, tempDir } from './tmp.js';

/** The object each route's path parameter names; seedAdminObjects creates them all. */
const OBJECT_FOR: [prefix: string, name: string][] = [
  ['/v1/secrets/', 'existing'],
  ['/v1/services/', 'svc'],
  ['/v1/nodes/', 'n1'],
  ['/v1/certs/', 'c1'],
  ['/v1/stacks/', 'proj'],
  ['/secrets/', 'existing'],
];

export interface AdminRoute {
  method: string;
  /** A concrete path: parameters filled with existing objects; Docker routes once at the root and once under /v1.41. */
  path: string;
  body: boolean;
  query: string[];
}

export function documentedRoutes(): AdminRoute[] {
  const out: AdminRoute[] = [];
  for (const op of documentedOperations()) {
    const name = OBJECT_FOR.find(([prefix]) => op.path.startsWith(prefix))?.[1] ?? 'x';
    const path = op.path.replace(/\{[^}]+\}/g, name);
    out.push({ method: op.method, path, body: op.body, query: op.query });
    if (op.docker) out.push({ method: op.method, path: `/v1.41${path}`, body: op.body, query: op.query });
  }
  return out;
}

/** Creates the objects documentedRoutes names, each with a request that must succeed. */
export async function seedAdminObjects(socket: string): Promise<void> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const steps: [string, string, unknown][] = [
    ['POST', '/v1/secrets', { name: 'existing', data: b64('seed-value') }],
    ['POST', '/v1/services', { name: 'svc', grants: [{ source: 'existing' }] }],
    ['POST', '/v1/join-token', { node: 'n1' }],
    ['POST', '/v1/certs', { name: 'c1', role: 'auditor' }],
    ['POST', '/v1/deploy', { project: 'proj', secrets: [{ key: 'k', name: 'proj_k', external: false, labels: {}, data: b64('proj-value') }], services: [] }],
  ];
  for (const [method, path, body] of steps) {
    const reply = await call(socket, method, path, body);
    expect(reply.status, `${method} ${path}: ${reply.text}`).to.be.within(200, 299);
  }
}

export async function revisionOf(socket: string): Promise<number> {
  const reply = await call<{ revision: number }>(socket, 'GET', '/healthz');
  expect(reply.status, 'the store answers /healthz').to.equal(200);
  return reply.body.revision;
}

export interface SeededStore {
  socket: string;
  store: StoreProcess;
  /** Kills the store and removes its folder. */
  stop(): Promise<void>;
}

/** A store on its own admin socket with the object every documented route names (seedAdminObjects): what the suites that walk the routes start from. */
export async function startSeededStore(): Promise<SeededStore> {
  const dir = await tempDir('hush-admin-routes-');
  const socket = join(dir, 'admin.sock');
  const stop = async (store?: StoreProcess) => {
    closeClients();
    if (store) await stopProcess(store, 'SIGKILL');
    await removeDir(dir);
  };
  let store: StoreProcess | undefined;
  try {
    store = await startStoreProcess({ data: join(dir, 'data'), socket, home: dir });
    await seedAdminObjects(socket);
  } catch (err) {
    await stop(store);
    throw err;
  }
  const started = store;
  return { socket, store: started, stop: () => stop(started) };
}
