/** Process composition of the store daemon: storage, PKI, dispatcher and listeners wired together. */
export { startStore } from './store-daemon.js';
