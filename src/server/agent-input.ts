/**
 * Checks on what agents send. A join token or a node certificate says who
 * may talk, not that what they say is sane: every field an agent sends goes
 * through the rules the admin API applies to the same things (src/rules),
 * and the counts that end up in the store are bounded per node.
 */
import type { JoinRequest, WireContainer } from '../protocol/index.js';
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

/** The containers of a Hello: each valid, no id twice, at most `max` of them. */
export function assertValidHello(containers: WireContainer[], max: number): void {
  if (containers.length > max) {
    throw new HushError('too_large', `the agent reports ${containers.length} containers; a node may run at most ${max} with secrets (store flag --node-max-containers)`);
  }
  const seen = new Set<string>();
  for (const container of containers) {
    assertValidContainer(container);
    if (seen.has(container.id)) throw new HushError('bad_request', `container "${container.id}" is listed twice`);
    seen.add(container.id);
  }
}

export function tooManyContainers(max: number): HushError {
  return new HushError('too_large', `this node already runs ${max} containers with secrets, the most a node may (store flag --node-max-containers)`);
}
