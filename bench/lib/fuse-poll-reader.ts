/**
 * Reads a container's secret file from its own process (the agent serving
 * the mount must never read it itself) until it holds an expected value, and
 * says when: what "readable through FUSE" means in bench/propagation.ts.
 *
 *   node --import tsx bench/lib/fuse-poll-reader.ts FILE
 *
 * Reads FILE once and prints "ready"; then takes one line on stdin, the
 * expected value in base64, and reads FILE (open, read to the end, close,
 * as a program reading its secret would) every POLL_MS until its bytes are
 * that value. Prints "seen <wall-clock ms>" and exits 0, or exits 1 after
 * TIMEOUT_MS. The value is compared, never printed.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';

const POLL_MS = 1;
const TIMEOUT_MS = 20_000;
const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: fuse-poll-reader.ts FILE\n');
  process.exit(2);
}

readFileSync(file);
process.stdout.write('ready\n');

const lines = createInterface({ input: process.stdin });
lines.once('line', (line) => {
  lines.close();
  const expected = Buffer.from(line.trim(), 'base64');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + TIMEOUT_MS;
  // A blocking loop: this process does nothing else, and a timer per poll would add the event loop's own delay.
  while (!readFileSync(file).equals(expected)) {
    if (Date.now() > deadline) {
      process.stderr.write(`${file}: not the expected value after ${TIMEOUT_MS} ms\n`);
      process.exit(1);
    }
    Atomics.wait(pause, 0, 0, POLL_MS);
  }
  const seen = performance.timeOrigin + performance.now();
  process.stdout.write(`seen ${seen}\n`, () => process.exit(0));
});
