/** The one polling helper: waits for a condition that something else makes true. */

/**
 * Resolves once `predicate` holds, checking every `intervalMs`; fails with
 * `what` after `timeoutMs`. The timeout bounds a hang, it is not a timing
 * assertion (timings belong in bench/).
 */
export async function until(predicate: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000, intervalMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
