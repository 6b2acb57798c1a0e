/**
 * Checks on what agents send. A join token or a node certificate says who
 * may talk, not that what they say is sane: every field an agent sends goes
 * through the rules the admin API applies to the same things (src/rules),
 * and the counts that end up in the store are bounded per node.
 */
import type { JoinRequest, WireContainer, WireHello } from '../protocol/index.js';
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
