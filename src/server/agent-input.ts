/**
 * Checks on what agents send. A join token or a node certificate says who
 * may talk, not that what they say is sane: every field an agent sends goes
 * through the rules the admin API applies to the same things (src/rules),
 * and the counts that end up in the store are bounded per node.
 */
import { MAX_READ_ENTRIES_PER_REPORT, type JoinRequest, type WireContainer, type WireHello, type WireReadEntry } from '../protocol/index.js';
import type { NodeContainer } from '../store/index.js';
import { HushError } from '../errors/index.js';
import { assertValidContainerId, assertValidHostname, assertValidLabels, assertValidName } from '../rules/index.js';

export function assertValidJoin(request: JoinRequest): void {
  if (request.name) assertValidName(request.name, 'node');
  if (request.hostname) assertValidHostname(request.hostname);
  assertValidLabels(request.labels ?? {});
}

export function assertValidContainer(container: WireContainer | undefined): asserts container is WireContainer {
  if (!container) throw new HushError('bad_request', 'the container is missing');
  assertValidContainerId(container.id);
  assertValidName(container.service, 'service');
  assertValidRuntime(container);
}

/** Docker's container ids are 64 hex digits; its names (without the leading "/") as dockerd accepts them. */
const DOCKER_ID = /^[0-9a-f]{64}$/;
const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/** A container's runtime identity: none at all, or a Docker id and name. */
function assertValidRuntime({ runtime = '', runtime_id: id = '', runtime_name: name = '' }: WireContainer): void {
  if (runtime === '' && id === '' && name === '') return;
  if (runtime !== 'docker') throw new HushError('bad_request', `unknown container runtime "${runtime.slice(0, 40)}": the store knows "docker"`);
  if (!DOCKER_ID.test(id)) throw new HushError('bad_request', `invalid Docker container id "${id.slice(0, 80)}": 64 hex digits`);
  if (!DOCKER_NAME.test(name)) throw new HushError('bad_request', `invalid Docker container name "${name.slice(0, 80)}"`);
}

/** A valid wire container as the store records it on its node. */
export function nodeContainer(container: WireContainer): NodeContainer {
  const { id, service, runtime, runtime_id: runtimeId, runtime_name: runtimeName } = container;
  return runtime === 'docker' ? { id, service, runtime: { runtime, id: runtimeId!, name: runtimeName! } } : { id, service };
}

/**
 * A Hello: its containers each valid, no id twice, at most `max` of them;
 * and what a resuming agent says it holds: valid names, no name twice.
 * (Sizes are bounded by the node port's message limit.)
 */
export function assertValidHello(hello: WireHello, max: number): void {
  const { containers } = hello;
  if (containers.length > max) {
    throw new HushError('too_large', `the agent reports ${containers.length} containers; a node may run at most ${max} with secrets (store flag --node-max-containers)`);
  }
  const seen = new Set<string>();
  for (const container of containers) {
    assertValidContainer(container);
    if (seen.has(container.id)) throw new HushError('bad_request', `container "${container.id}" is listed twice`);
    seen.add(container.id);
  }
  const heldNames = new Set<string>();
  for (const held of hello.held ?? []) {
    assertValidName(held.name, 'secret');
    if (typeof held.secret_id !== 'string' || !SECRET_ID.test(held.secret_id)) throw new HushError('bad_request', `the held secret "${held.name}" has a malformed id`);
    if (!Number.isSafeInteger(held.version) || held.version < 1) throw new HushError('bad_request', `the held secret "${held.name}" has no valid version`);
    if (heldNames.has(held.name)) throw new HushError('bad_request', `held secret "${held.name}" is listed twice`);
    heldNames.add(held.name);
  }
  const heldServices = new Set<string>();
  for (const service of hello.held_services ?? []) {
    assertValidName(service, 'service');
    if (heldServices.has(service)) throw new HushError('bad_request', `held service "${service}" is listed twice`);
    heldServices.add(service);
  }
}

/** A secret id as the store makes them (25 letters and digits), or '' from a store that did not send ids. */
const SECRET_ID = /^[A-Za-z0-9_-]{0,64}$/;

export function tooManyContainers(max: number): HushError {
  return new HushError('too_large', `this node already runs ${max} containers with secrets, the most a node may (store flag --node-max-containers)`);
}

/** How far ahead of the store's clock a node may date a read (clock skew between hosts). */
const MAX_READ_CLOCK_SKEW_MS = 24 * 3600 * 1000;

/**
 * The shape of a ReadReport: at most MAX_READ_ENTRIES_PER_REPORT entries,
 * each naming a well-formed container id, secret name and version, with
 * times that are real (after 1970, not far ahead of this clock) and a
 * release no earlier than the first read; no entry twice. Whether the node
 * may report on that container and secret is the dispatcher's check.
 */
export function assertValidReadReport(entries: WireReadEntry[], now = Date.now()): void {
  if (entries.length > MAX_READ_ENTRIES_PER_REPORT) throw new HushError('too_large', `a read report carries ${entries.length} entries; at most ${MAX_READ_ENTRIES_PER_REPORT}`);
  const seen = new Set<string>();
  const latest = now + MAX_READ_CLOCK_SKEW_MS;
  for (const entry of entries) {
    assertValidContainerId(entry.container_id);
    assertValidName(entry.secret, 'secret');
    const { version, first_read_at_ms: first, released_at_ms: released } = entry;
    if (!Number.isSafeInteger(version) || version < 1) throw new HushError('bad_request', `read of "${entry.secret}": version ${String(version)} is not a version number`);
    if (!Number.isSafeInteger(first) || first <= 0 || first > latest) throw new HushError('bad_request', `read of "${entry.secret}" v${version}: first read time ${String(first)} is not a time this store accepts`);
    if (!Number.isSafeInteger(released) || (released !== 0 && (released < first || released > latest))) {
      throw new HushError('bad_request', `read of "${entry.secret}" v${version}: release time ${String(released)} is not 0 (held) or a time after the first read`);
    }
    const key = `${entry.container_id}\u0000${entry.secret}\u0000${version}`;
    if (seen.has(key)) throw new HushError('bad_request', `read of "${entry.secret}" v${version} by container "${entry.container_id}" is listed twice`);
    seen.add(key);
  }
}
