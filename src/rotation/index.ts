/**
 * rotation: the policy of secret rotation, no I/O. How a generated value is
 * made, how many versions a secret keeps, and which entitled nodes hold which
 * version (fed from the nodes' acks). The store applies the retention rule,
 * the admin API the generator, the dispatcher reports acks to the tracker.
 */
export { generateValue, MAX_GENERATE_BYTES, MIN_GENERATE_BYTES, type RandomSource } from './generate.js';
export { DEFAULT_KEEP_VERSIONS, retainVersions } from './retention.js';
export { PropagationTracker, type AckReporter } from './propagation.js';
