/** Process composition of the store daemon: storage, PKI, dispatcher and listeners wired together. */
export { startStore, type RunningStore, type StoreDaemonOptions } from './store-daemon.js';
