/**
 * What the store accepts of a container an agent reports: the runtime
 * identity (a Docker container's id and name, for `hush node inspect`) is
 * all or nothing, and only in Docker's own formats.
 */
import { expect } from 'chai';
import { assertValidContainer, nodeContainer } from '../../src/server/agent-input.js';
import type { WireContainer } from '../../src/protocol/index.js';

const dockerId = 'a'.repeat(64);

describe('agent input: a container and its runtime identity', () => {
  it('accepts a container with no runtime identity, and one with a Docker id and name, and records each as given', () => {
    const plain: WireContainer = { id: 'mount-1', service: 'web', runtime: '', runtime_id: '', runtime_name: '' };
    const docker: WireContainer = { id: 'mount-2', service: 'web', runtime: 'docker', runtime_id: dockerId, runtime_name: 'web-1' };
    for (const c of [plain, docker, { id: 'mount-3', service: 'web' }]) expect(() => assertValidContainer(c)).to.not.throw();
    expect(nodeContainer(plain)).to.deep.equal({ id: 'mount-1', service: 'web' });
    expect(nodeContainer(docker)).to.deep.equal({ id: 'mount-2', service: 'web', runtime: { runtime: 'docker', id: dockerId, name: 'web-1' } });
  });

  it('refuses a partial, unknown or malformed identity with a message naming what is wrong', () => {
    const bad: [Partial<WireContainer>, RegExp][] = [
      [{ runtime: 'podman', runtime_id: dockerId, runtime_name: 'x' }, /unknown container runtime "podman"/],
      [{ runtime: '', runtime_id: dockerId, runtime_name: '' }, /unknown container runtime ""/],
      [{ runtime: 'docker', runtime_id: 'abc', runtime_name: 'x' }, /invalid Docker container id "abc"/],
      [{ runtime: 'docker', runtime_id: 'A'.repeat(64), runtime_name: 'x' }, /invalid Docker container id/],
      [{ runtime: 'docker', runtime_id: dockerId, runtime_name: '' }, /invalid Docker container name ""/],
      [{ runtime: 'docker', runtime_id: dockerId, runtime_name: '/web' }, /invalid Docker container name "\/web"/],
      [{ runtime: 'docker', runtime_id: dockerId, runtime_name: 'x'.repeat(129) }, /invalid Docker container name/],
    ];
    for (const [fields, message] of bad) expect(() => assertValidContainer({ id: 'mount-1', service: 'web', ...fields }), message.source).to.throw(message);
  });
});
