import { expect } from 'chai';
import { HushError } from '../../src/errors/index.js';

/** Resolves with the error a promise rejects with; fails the test if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** The code of the HushError `fn` throws; fails the test if it throws something else or nothing. */
export function hushErrorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(HushError);
    return (err as HushError).code;
  }
  throw new Error('expected a HushError');
}
