/** Process composition: the store daemon (and, later, the agent and `hush up`). */
export { startStore, type RunningStore, type StoreDaemonOptions } from './store-daemon.js';
