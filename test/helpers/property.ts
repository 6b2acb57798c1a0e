/**
 * fast-check settings shared by the property suites: one seed per process,
 * printed once, so a failing run can be replayed (`HUSH_FUZZ_SEED=N`), and a
 * run count multiplied by HUSH_PROPERTY_SCALE (1 in `npm test`, more in
 * `npm run test:security`).
 */
import { randomInt } from 'node:crypto';
import fc from 'fast-check';

export const PROPERTY_SEED = Number(process.env.HUSH_FUZZ_SEED ?? randomInt(2 ** 31));
const SCALE = Number(process.env.HUSH_PROPERTY_SCALE ?? 1);
let printed = false;

/** The number of runs for a property whose `npm test` count is `short`. */
export function runs(short: number): number {
  return Math.max(1, Math.round(short * SCALE));
}

/** fc.assert with the shared seed; fast-check's failure message carries the seed, the path and the shrunk counterexample. */
export async function check<Ts>(property: fc.IRawProperty<Ts>, numRuns: number): Promise<number> {
  if (!printed) {
    printed = true;
    console.log(`      property seed ${PROPERTY_SEED} (replay: HUSH_FUZZ_SEED=${PROPERTY_SEED})`);
  }
  await fc.assert(property, { seed: PROPERTY_SEED, numRuns });
  return numRuns;
}
