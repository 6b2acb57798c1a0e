/**
 * The storage engine measured in-process, without HTTP: the embedded backend
 * alone, the backend plus crypto (openStore + secrets.create), and a bare
 * group-commit loop writing records of the same size as the floor.
 */
import { randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { deriveLogAuth, EmbeddedBackend, Envelope, loadSodium, openStore } from '../../src/store/index.js';
import { meanBatch, RawGroupCommit, watchEngineFlushes, type FlushStats } from './group-commit.js';
import { runLoad, summarize, type LoadOptions, type LoadSummary } from './load.js';

export interface InProcessResult extends LoadSummary {
  /** Bytes the commit added to the log, measured from the files. */
  bytesPerCommit: number;
  meanBatch?: number;
  /** Mean wall time of one writev + fdatasync, ms (includes waiting for the event loop). */
  flushMs?: number;
  /** Mean time inside fdatasync alone, ms (raw loop only). */
  syncMs?: number;
  /** Event-loop utilization during the run: near 1 means the main thread, not the disk, is the limit. */
  elu: number;
}

/** Total size of the write-ahead log segments in a data directory. */
async function walBytes(dir: string): Promise<number> {
  let total = 0;
  for (const file of await readdir(dir)) if (file.startsWith('wal-')) total += (await stat(join(dir, file))).size;
  return total;
}

async function measured(
  load: LoadOptions,
  warmup: number,
  logDir: string | undefined,
  flushes: FlushStats | undefined,
  op: (i: number, warm: boolean) => Promise<void>,
): Promise<{ summary: LoadSummary; elu: number; bytes: number; flushes?: FlushStats }> {
  await runLoad({ ...load, count: warmup }, (i) => op(i, true));
  const before = logDir ? await walBytes(logDir) : 0;
  if (flushes) Object.assign(flushes, { batches: 0, records: 0, flushMs: 0 }, flushes.syncMs === undefined ? {} : { syncMs: 0 });
  const elu0 = performance.eventLoopUtilization();
  const run = await runLoad(load, (i) => op(i, false));
  const elu = performance.eventLoopUtilization(elu0).utilization;
  const bytes = logDir ? (await walBytes(logDir)) - before : 0;
  return { summary: summarize([run]), elu, bytes, flushes: flushes && { ...flushes } };
}

function withFlushes(base: Omit<InProcessResult, 'meanBatch' | 'flushMs' | 'syncMs'>, flushes: FlushStats | undefined): InProcessResult {
  if (!flushes || flushes.batches === 0) return base;
  return { ...base, meanBatch: meanBatch(flushes), flushMs: flushes.flushMs / flushes.batches, syncMs: flushes.syncMs && flushes.syncMs / flushes.batches };
}

export interface RealRecord {
  /** The stored JSON of a secret created with a `valueBytes` value: id, name, labels, dates, sealed version. */
  json: string;
  /** Log bytes one secrets.create adds (two puts, the record and the id index). */
  createCommitBytes: number;
  /** Log bytes one single-put commit of `json` adds. */
  putCommitBytes: number;
}

/** The engine alone authenticates its log with a key derived from a root key, as the store does. */
async function benchLogAuth() {
  return deriveLogAuth(await loadSodium(), randomBytes(32));
}

/** Creates one real secret and one single-put commit, and measures what they write. */
export async function probeRealRecord(dir: string, valueBytes: number, name: string): Promise<RealRecord> {
  const store = await openStore({ dataDir: join(dir, 'store') });
  let json: string;
  let createCommitBytes: number;
  try {
    const before = await walBytes(join(dir, 'store'));
    await store.secrets.create(name, randomBytes(valueBytes));
    createCommitBytes = (await walBytes(join(dir, 'store'))) - before;
    json = (await store.backend.get(`secrets/${name}`))!.value;
  } finally {
    await store.backend.close();
  }
  const backend = await EmbeddedBackend.open({ dir: join(dir, 'engine'), auth: await benchLogAuth() });
  try {
    const before = await walBytes(join(dir, 'engine'));
    await backend.commit({ ops: [{ type: 'put', key: `secrets/${name}`, value: json }] });
    return { json, createCommitBytes, putCommitBytes: (await walBytes(join(dir, 'engine'))) - before };
  } finally {
    await backend.close();
  }
}

/** 64 writers committing one put each of the real record, through EmbeddedBackend.commit. */
export async function runEngine(dir: string, record: string, load: LoadOptions, warmup: number): Promise<InProcessResult> {
  const backend = await EmbeddedBackend.open({ dir, auth: await benchLogAuth() });
  try {
    const flushes = watchEngineFlushes(backend);
    const r = await measured(load, warmup, dir, flushes, async (i, warm) => {
      await backend.commit({ ops: [{ type: 'put', key: `secrets/bench-${warm ? 'w' : 'm'}${i}`, value: record }] });
    });
    return withFlushes({ ...r.summary, elu: r.elu, bytesPerCommit: r.bytes / r.summary.ops }, r.flushes);
  } finally {
    await backend.close();
  }
}

/** 64 writers creating secrets through the domain layer: validation, envelope encryption, JSON, engine. */
export async function runCreate(dir: string, valueBytes: number, load: LoadOptions, warmup: number): Promise<InProcessResult> {
  const store = await openStore({ dataDir: dir });
  try {
    const flushes = watchEngineFlushes(store.backend);
    const value = randomBytes(valueBytes);
    const r = await measured(load, warmup, dir, flushes, async (i, warm) => {
      await store.secrets.create(`bench-${warm ? 'w' : 'm'}${i}`, value);
    });
    return withFlushes({ ...r.summary, elu: r.elu, bytesPerCommit: r.bytes / r.summary.ops }, r.flushes);
  } finally {
    await store.backend.close();
  }
}

/** The floor: a bare group-commit loop appending `bytes`-sized records. */
export async function runRaw(dir: string, bytes: number, load: LoadOptions, warmup: number): Promise<InProcessResult> {
  const raw = await RawGroupCommit.open(join(dir, 'raw.log'));
  try {
    const record = randomBytes(Math.round(bytes));
    const r = await measured(load, warmup, undefined, raw.stats, () => raw.append(record));
    return withFlushes({ ...r.summary, elu: r.elu, bytesPerCommit: record.length }, r.flushes);
  } finally {
    await raw.close();
  }
}

export interface OpCosts {
  /** Envelope.seal of one value: data key, nonces, two AEAD seals. */
  sealUs: number;
  /** The synchronous part of EmbeddedBackend.commit for one put of the record: checks, JSON, framing, chain hash. */
  commitUs: number;
}

/** Single-threaded CPU cost of the two per-create steps hush adds on top of the raw append. Bounded loops. */
export async function measureOpCosts(dir: string, record: string, valueBytes: number): Promise<OpCosts> {
  const sodium = await loadSodium();
  const envelope = new Envelope(sodium);
  const kek = sodium.crypto_aead_xchacha20poly1305_ietf_keygen();
  const value = randomBytes(valueBytes);
  const perCall = (n: number, f: (i: number) => void) => {
    for (let i = 0; i < 200; i++) f(i); // warm-up
    const t0 = performance.now();
    for (let i = 0; i < n; i++) f(i);
    return ((performance.now() - t0) * 1000) / n;
  };
  const sealUs = perCall(2_000, (i) => envelope.seal(value, { id: 'x'.repeat(25), name: `bench-${i}`, version: 1 }, kek, 1));
  const backend = await EmbeddedBackend.open({ dir, auth: await benchLogAuth() });
  try {
    // commit() frames synchronously and returns a promise; the flush happens after the loop.
    const pending: Promise<number>[] = [];
    const commitUs = perCall(5_000, (i) => void pending.push(backend.commit({ ops: [{ type: 'put', key: `secrets/bench-${i}`, value: record }] })));
    await Promise.all(pending);
    return { sealUs, commitUs };
  } finally {
    await backend.close();
  }
}
