/** `hush audit`: read and check the store's audit log (GET /v1/audit, GET /v1/audit/verify), and who read what (GET /v1/audit/reads). */
import { Command, InvalidArgumentError } from 'commander';
import { HushError } from '../../errors/index.js';
import type { ApiClient } from '../client.js';
import { formatOption, printJson, printTable, type Format } from '../output.js';
// Types only: erased at build.
import type { AuditRecord, AuditVerdict, ReadRecord } from '../../rotation/index.js';

/** An ISO time, or a span back from now ("30m", "24h", "7d"). */
function parseSince(text: string): string {
  const span = /^(\d+)([smhd])$/.exec(text);
  if (span) return new Date(Date.now() - Number(span[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[span[2] as 's' | 'm' | 'h' | 'd']).toISOString();
  if (Number.isNaN(Date.parse(text))) throw new InvalidArgumentError(`give a time (2025-01-31T12:00:00Z) or a span back from now (30m, 24h, 7d), not "${text}".`);
  return new Date(Date.parse(text)).toISOString();
}

export function auditCommand(client: () => Promise<ApiClient>): Command {
  return new Command('audit')
    .description('show the audit log (every change and refusal; never a value), or check its chain with --verify')
    .option('--since <time>', 'records from this time on: an ISO time, or 30m, 24h, 7d back from now', parseSince)
    .option('--actor <actor>', 'records whose actor contains this text (local-root, cert:NAME, scheduler, node:NAME)')
    .option('--verify', 'check that no record was edited, removed, reordered or cut off; exit 1 naming where, if one was')
    .option('--reads', 'who read what: which containers on which nodes read which version of a secret, and whether they still hold it')
    .option('--secret <name>', 'with --reads: only reads of this secret')
    .addOption(formatOption())
    .action(async (opts: { since?: string; actor?: string; verify?: boolean; reads?: boolean; secret?: string; format: Format }, command: Command) => {
      if (opts.secret !== undefined && !opts.reads) command.error('error: --secret goes with --reads', { exitCode: 2 });
      if (opts.reads && (opts.verify || opts.since !== undefined || opts.actor !== undefined)) command.error('error: --reads does not go with --verify, --since or --actor', { exitCode: 2 });
      const c = await client();
      if (opts.reads) {
        const reads = await c.get<ReadRecord[]>(`/v1/audit/reads${opts.secret === undefined ? '' : `?${new URLSearchParams({ secret: opts.secret }).toString()}`}`);
        if (opts.format === 'json') return printJson(reads);
        printTable(
          ['SECRET', 'VERSION', 'NODE', 'CONTAINER', 'SERVICE', 'FIRST READ', 'STATE'],
          reads.map((r) => [r.secret, String(r.version), r.nodeName ?? r.node, r.runtime ? `${r.runtime.name} (docker ${r.runtime.id.slice(0, 12)})` : r.container, r.service, r.firstReadAt, r.state === 'held' ? 'held' : `released ${r.releasedAt}`]),
        );
        return;
      }
      if (opts.verify) {
        const verdict = await c.get<AuditVerdict>('/v1/audit/verify');
        if (opts.format === 'json') printJson(verdict);
        else if (verdict.ok) console.log(`audit log intact: ${verdict.records} records, chain verified${verdict.head ? ` up to record ${verdict.head.seq} (tag ${verdict.head.tag.slice(0, 16)}…)` : ''}`);
        else for (const p of verdict.problems) console.log(`record ${p.seq}: ${p.problem}: ${p.message}`);
        if (!verdict.ok) throw new HushError('conflict', `the audit log fails verification: ${verdict.problems.length} problem${verdict.problems.length === 1 ? '' : 's'}, the first at record ${verdict.problems[0]!.seq}`);
        return;
      }
      const query = new URLSearchParams();
      if (opts.since) query.set('since', opts.since);
      if (opts.actor) query.set('actor', opts.actor);
      const records = await c.get<AuditRecord[]>(`/v1/audit${query.size > 0 ? `?${query.toString()}` : ''}`);
      if (opts.format === 'json') return printJson(records);
      printTable(
        ['SEQ', 'TIME', 'ACTOR', 'ACTION', 'OBJECT', 'RESULT'],
        records.map((r) => [String(r.seq), r.time, r.actor, r.action, r.object, r.result === 'ok' ? (r.detail ? `ok: ${r.detail}` : 'ok') : `${r.result}${r.detail ? `: ${r.detail}` : ''}`]),
      );
    });
}
