/**
 * A reader in its own process: the process serving a FUSE mount must never
 * read it itself (it would deadlock), so tests hand reads to this helper.
 *
 *   node --import tsx test/helpers/fuse-reader.ts hold FILE
 *
 * opens FILE, prints "opened", waits for one line on stdin, then reads FILE
 * to the end through the same descriptor in 4 KiB reads (many FUSE requests
 * for a large file) and prints the bytes as one base64 line.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { createInterface } from 'node:readline';

const [mode, file] = process.argv.slice(2);
if (mode !== 'hold' || !file) {
  process.stderr.write('usage: fuse-reader.ts hold FILE\n');
  process.exit(2);
}

const fd = openSync(file, 'r');
process.stdout.write('opened\n');

const lines = createInterface({ input: process.stdin });
lines.once('line', () => {
  lines.close();
  const chunks: Buffer[] = [];
  for (;;) {
    const chunk = Buffer.alloc(4096);
    const n = readSync(fd, chunk, 0, chunk.length, null);
    if (n === 0) break;
    chunks.push(chunk.subarray(0, n));
  }
  closeSync(fd);
  // Exit once the line is flushed: an open stdin would keep the process alive.
  process.stdout.write(Buffer.concat(chunks).toString('base64') + '\n', () => process.exit(0));
});
