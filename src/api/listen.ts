/** Serving an HTTP app on a root-only unix socket. */
import { chmod, mkdir, unlink } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { dirname } from 'node:path';
import { createServer, type RequestListener, type Server } from 'node:http';
import { HushError } from '../errors/index.js';

/**
 * Listens on `path` with mode 0600 from the first moment (umask), so no other
 * user can connect in the gap before a chmod. A stale socket left by a crash is
 * replaced; a live one (another process serving it) is an error.
 */
export async function listenOnUnixSocket(app: RequestListener, path: string): Promise<Server> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  if (await isServed(path)) throw new HushError('conflict', `${path} is already served by a running process; stop it first or pass another --socket`);
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  const server = createServer(app);
  const previousUmask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(previousUmask);
  }
  await chmod(path, 0o600);
  return server;
}

function isServed(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
