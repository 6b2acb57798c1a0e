/**
 * The child process of the conformance suite's crash test: opens a backend
 * through a conformance target and commits transactions as fast as it can,
 * several in flight at once, printing `ack <id> <revision>` for each one the
 * backend acknowledges, until the suite kills it with SIGKILL.
 *
 *   node --import tsx backend-crash-writer.ts <target module URL> <export name> <context JSON>
 *
 * Transaction <id> puts CRASH_OPS_PER_TXN keys crash/<id>/<n>, each holding
 * crashValue(id), on condition that crash/<id>/0 is absent.
 */
import { writeSync } from 'node:fs';
import { CRASH_OPS_PER_TXN, crashValue, type ConformanceTarget } from './backend-conformance.js';

const [moduleUrl, exportName, contextJson] = process.argv.slice(2);
const target = (await import(moduleUrl!))[exportName!] as ConformanceTarget;
const backend = await target.open(JSON.parse(contextJson!));

const IN_FLIGHT = 8;
let next = 0;

async function writer(): Promise<never> {
  for (;;) {
    const id = next++;
    const key = (n: number) => `crash/${String(id).padStart(8, '0')}/${n}`;
    const revision = await backend.commit({
      conditions: [{ key: key(0), modRevision: 0 }],
      ops: Array.from({ length: CRASH_OPS_PER_TXN }, (_, n) => ({ type: 'put' as const, key: key(n), value: crashValue(id) })),
    });
    // Synchronous: the line is in the pipe before the next commit is queued, so no acknowledged commit goes unreported.
    writeSync(1, `ack ${String(id).padStart(8, '0')} ${revision}\n`);
  }
}

await Promise.all(Array.from({ length: IN_FLIGHT }, writer));
