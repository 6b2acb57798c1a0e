/**
 * HUSH_HOME (default ~/.hush): where `hush up` / `hush store` leave what a
 * client needs to find and trust the store — the admin socket path (and, with
 * the PKI, ca.pem / cert.pem / key.pem, usable as DOCKER_CERT_PATH).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../files/index.js';

export interface HomeConfig {
  /** unix:///path/admin.sock or https://H:P */
  host?: string;
  /** The admin API over HTTPS (client certificate in this directory). */
  adminAddress?: string;
  /** Where agents reach the node protocol. */
  nodeAddress?: string;
  agentSocket?: string;
  /** The node `hush up`'s agent joined as, retired at the next `hush up`. */
  upNodeId?: string;
  /** The Docker volume driver name `hush up`'s agent serves ("off" when it serves none): `hush compose`'s default. */
  dockerPlugin?: string;
}

export const DEFAULT_ADMIN_SOCKET = '/run/hush/admin.sock';
export const DEFAULT_AGENT_SOCKET = '/run/hush/agent.sock';
export const DEFAULT_MOUNTS_DIR = '/run/hush/mounts';

export function hushHome(explicit?: string): string {
  return explicit || process.env.HUSH_HOME || join(homedir(), '.hush');
}

export async function readHomeConfig(home: string): Promise<HomeConfig> {
  try {
    return JSON.parse(await readFile(join(home, 'config.json'), 'utf8')) as HomeConfig;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
}

/** Merges `changes` into the home's config.json (0600, written atomically). */
export async function updateHomeConfig(home: string, changes: HomeConfig): Promise<void> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const current = await readHomeConfig(home);
  await writeFileAtomic(join(home, 'config.json'), JSON.stringify({ ...current, ...changes }, null, 2) + '\n', 0o600);
}
