/**
 * Docker's (legacy, socket-file) volume plugin protocol, served by the agent
 * at /run/docker/plugins/NAME.sock, so that
 *
 *   docker run --mount type=volume,volume-driver=hush,source=SERVICE,target=/run/secrets,readonly IMAGE
 *
 * gives a real container its service's secrets. The volume name is the hush
 * service, which is all a Mount needs: the agent keeps no volume state, so
 * an agent restart loses nothing Docker relies on.
 *
 * Mount {Name, ID} registers a container through the same ContainerRegistry
 * as the runtime API (the store decides, the secrets arrive, a FUSE mount of
 * that container's grants is made) under Docker's mount ID, which is unique
 * per mount and per container start; Unmount {Name, ID} unregisters it. A
 * refusal answers {"Err": the store's reason}, which `docker run` prints.
 * Who the container is (Docker id, name, labels) comes from dockerd after it
 * starts (docker-identities.ts); a label hush.reload-signal=SIG makes the
 * agent send it SIG through dockerd when one of its secrets gets a new
 * version (after the file shows it).
 *
 * Protocol notes (checked with Docker 20.10): requests are POSTs with a JSON
 * body and no Content-Type; answers are 200 with JSON, an error is a
 * non-empty "Err".
 */
import { constants } from 'node:os';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { unlink } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { closeServer, listenOnUnixSocket } from '../http/index.js';
import type { Logger } from '../log/index.js';
import { CONTAINER_ID_PATTERN } from '../rules/index.js';
import type { ContainerRegistry } from './containers.js';
import { DockerEngine } from './docker-engine.js';
import { DockerIdentities, type ContainerIdentity } from './docker-identities.js';

/** Where dockerd looks for socket-file plugins. */
export const DOCKER_PLUGIN_DIR = '/run/docker/plugins';
/** The container label that asks for a signal on rotation, as `hush run --reload-signal` does. */
export const RELOAD_SIGNAL_LABEL = 'hush.reload-signal';

const PLUGIN_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;
/** The store's rule for service names (src/rules): the volume name is one. */
const SERVICE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;
const MOUNT_ID = new RegExp(CONTAINER_ID_PATTERN);
/** Request bodies are a name and an id; anything large is not Docker. */
const MAX_BODY_BYTES = 16 * 1024;

export interface DockerPluginOptions {
  /** The plugin (volume driver) name: the socket is DOCKER_PLUGIN_DIR/NAME.sock. */
  name: string;
  /** How to reach dockerd (unix:///var/run/docker.sock), for container identities and signals. */
  dockerHost: string;
  /** Tests and unusual setups only: where the socket goes. */
  dir?: string;
}

export function assertValidPluginName(name: string): void {
  if (!PLUGIN_NAME.test(name)) throw new Error(`--docker-plugin "${name}": use 1 to 64 letters, digits, "_", "." or "-" (starting with a letter or digit), or "off"`);
}

export interface DockerPlugin {
  readonly socket: string;
  close(): Promise<void>;
}

interface PluginState {
  registry: ContainerRegistry;
  identities: DockerIdentities;
  /** Mount ID → volume name and mountpoint, for Path/Get/List. */
  mounts: Map<string, { name: string; mountpoint: string }>;
  log: Logger;
}

type Body = Record<string, unknown>;
type Handler = (body: Body, state: PluginState) => Promise<Body> | Body;

const handlers: Record<string, Handler> = {
  '/Plugin.Activate': () => ({ Implements: ['VolumeDriver'] }),
  // local: the volume is this node's; Docker does not look for it on other nodes.
  '/VolumeDriver.Capabilities': () => ({ Capabilities: { Scope: 'local' } }),
  '/VolumeDriver.Create': (body) => {
    const name = volumeName(body);
    const opts = body.Opts;
    if (opts && typeof opts === 'object' && Object.keys(opts).length > 0) {
      throw new Error(`hush volumes take no options (got ${Object.keys(opts).join(', ')}): the volume name "${name}" is the hush service, and its grants say which files, owners and modes`);
    }
    return {};
  },
  // Docker keeps its own record of created volumes; nothing here to remove.
  '/VolumeDriver.Remove': (body) => (volumeName(body), {}),
  '/VolumeDriver.Get': (body, state) => {
    const name = volumeName(body);
    const mountpoint = latestMountOf(state, name);
    return { Volume: { Name: name, ...(mountpoint ? { Mountpoint: mountpoint } : {}), Status: {} } };
  },
  '/VolumeDriver.List': (_body, state) => ({ Volumes: [...new Set([...state.mounts.values()].map((m) => m.name))].map((Name) => ({ Name })) }),
  // Path carries no mount ID, so with two containers on one name it cannot say which; Docker uses the Mount answer for the container itself.
  '/VolumeDriver.Path': (body, state) => ({ Mountpoint: latestMountOf(state, volumeName(body)) ?? '' }),
  '/VolumeDriver.Mount': async (body, state) => {
    const name = volumeName(body);
    const id = mountId(body);
    const view = await state.registry.start({ id, service: name });
    if (!view.mount) {
      await state.registry.stop(id).catch(() => undefined);
      throw new Error('the hush agent makes no secret mounts (it runs without a mounts directory)');
    }
    state.mounts.set(id, { name, mountpoint: view.mount });
    state.identities.expect(id, view.mount);
    return { Mountpoint: view.mount };
  },
  '/VolumeDriver.Unmount': async (body, state) => {
    const id = mountId(body);
    state.identities.forget(id);
    state.mounts.delete(id);
    await state.registry.stop(id).catch((err: unknown) => {
      // Mounted by an agent before a restart: that mount went with that agent, and Docker must be able to stop the container.
      if ((err as { code?: string }).code !== 'not_found') throw err;
      state.log.info({ container: id }, 'docker unmounted a volume this agent did not mount (made before a restart)');
    });
    return {};
  },
};

function volumeName(body: Body): string {
  const name = body.Name;
  if (typeof name !== 'string' || !SERVICE_NAME.test(name)) {
    throw new Error(`volume name ${JSON.stringify(name)} is not a hush service name: the volume name is the service (1 to 64 letters, digits, "_", "." or "-")`);
  }
  return name;
}

function mountId(body: Body): string {
  const id = body.ID;
  if (typeof id !== 'string' || !MOUNT_ID.test(id)) throw new Error(`mount ID ${JSON.stringify(id)} is not what Docker sends (hex)`);
  return id;
}

function latestMountOf(state: PluginState, name: string): string | undefined {
  let latest: string | undefined;
  for (const m of state.mounts.values()) if (m.name === name) latest = m.mountpoint;
  return latest;
}

function app(state: PluginState): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) req.destroy();
      else chunks.push(chunk);
    });
    req.on('end', () => {
      void answer(req.url ?? '', Buffer.concat(chunks).toString('utf8'), state).then(({ status, body }) => {
        // Docker's plugin client reads JSON whatever the header says; this one is for people with curl.
        res.writeHead(status, { 'content-type': 'application/vnd.docker.plugins.v1.1+json' });
        res.end(JSON.stringify(body));
      });
    });
  };
}

async function answer(url: string, text: string, state: PluginState): Promise<{ status: number; body: Body }> {
  const handler = Object.hasOwn(handlers, url) ? handlers[url] : undefined;
  if (!handler) return { status: 404, body: { Err: `${url} is not part of the volume plugin protocol` } };
  let body: Body = {};
  try {
    const parsed: unknown = text.trim() ? JSON.parse(text) : {};
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Body;
  } catch {
    return { status: 200, body: { Err: `${url}: the request body is not JSON` } };
  }
  try {
    return { status: 200, body: { ...(await handler(body, state)), Err: '' } };
  } catch (err) {
    const reason = (err as Error).message;
    state.log.info({ call: url, volume: body.Name, mount: body.ID, reason }, 'docker plugin call refused');
    return { status: 200, body: { Err: reason } };
  }
}

/** Serves the plugin socket; `close` stops it and removes the socket. */
export async function startDockerPlugin(opts: DockerPluginOptions, registry: ContainerRegistry, log: Logger): Promise<DockerPlugin> {
  assertValidPluginName(opts.name);
  const engine = new DockerEngine(opts.dockerHost);
  const socket = join(opts.dir ?? DOCKER_PLUGIN_DIR, `${opts.name}.sock`);
  const pluginLog = log.child({ dockerPlugin: opts.name });
  const identities = new DockerIdentities({
    engine,
    driver: opts.name,
    log: pluginLog,
    onIdentified: (mountId: string, identity: ContainerIdentity) => {
      const signal = reloadSignalOf(identity, pluginLog);
      const reload = signal
        ? () => {
            engine.kill(identity.id, signal).then(
              () => pluginLog.info({ container: mountId, runtimeId: identity.id, signal }, 'signalled docker container: a secret has a new version'),
              (err: unknown) => pluginLog.warn({ container: mountId, runtimeId: identity.id, err: (err as Error).message }, 'could not signal docker container'),
            );
          }
        : undefined;
      registry.identify(mountId, { runtime: 'docker', id: identity.id, name: identity.name }, reload);
    },
  });
  const state: PluginState = { registry, identities, mounts: new Map(), log: pluginLog };
  const server: Server = await listenOnUnixSocket(app(state), socket);
  pluginLog.info({ socket, dockerHost: opts.dockerHost }, 'serving the docker volume plugin');
  return {
    socket,
    close: async () => {
      identities.close();
      await closeServer(server);
      await unlink(socket).catch(() => undefined);
    },
  };
}

function reloadSignalOf(identity: ContainerIdentity, log: Logger): NodeJS.Signals | undefined {
  const raw = identity.labels[RELOAD_SIGNAL_LABEL];
  if (raw === undefined) return undefined;
  const name = (raw.toUpperCase().startsWith('SIG') ? raw.toUpperCase() : `SIG${raw.toUpperCase()}`) as NodeJS.Signals;
  if (name in constants.signals) return name;
  log.warn({ runtimeId: identity.id, label: RELOAD_SIGNAL_LABEL, value: raw }, 'unknown signal in the reload-signal label; the container will not be signalled');
  return undefined;
}
