/**
 * A replica's name among the store replicas sharing one etcd: made once
 * (hostname and a random suffix, so two replicas on one host differ) and
 * kept in its data directory, so a restarted replica is the same replica in
 * `hush node ls`.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../files/index.js';

export async function replicaIdIn(dataDir: string): Promise<string> {
  const file = join(dataDir, 'replica-id');
  try {
    const stored = (await readFile(file, 'utf8')).trim();
    if (stored) return stored;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const id = `${hostname().replace(/[^A-Za-z0-9.-]/g, '-')}-${randomBytes(3).toString('hex')}`;
  await writeFileAtomic(file, `${id}\n`, 0o644);
  return id;
}
