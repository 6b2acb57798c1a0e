/** `hush unlock` and `hush key rotate`. */
import { Command } from 'commander';
import { HushError } from '../../errors/index.js';
import type { ApiClient } from '../client.js';
import { readValue } from '../input.js';

export function unlockCommand(client: () => Promise<ApiClient>): Command {
  return new Command('unlock').description('unlock an autolocked store (reads the unlock key from stdin)').action(async () => {
    if (process.stdin.isTTY) process.stderr.write('Paste the unlock key, then press Enter and Ctrl-D:\n');
    const key = (await readValue('-')).toString('utf8').trim();
    if (!key) throw new HushError('bad_request', 'no unlock key on stdin');
    await (await client()).post('/v1/unlock', { key });
    console.log('store unlocked');
  });
}

export function keyCommand(client: () => Promise<ApiClient>): Command {
  const key = new Command('key').description('manage the key-encryption key');
  key
    .command('rotate')
    .description('make a new key-encryption key and re-wrap every data key under it (atomic)')
    .action(async () => {
      const result = await (await client()).post<{ term: number; secrets: number }>('/v1/key/rotate');
      console.log(`key rotated: now at key term ${result.term}; ${result.secrets} secrets re-wrapped`);
    });
  return key;
}
