/** `hush ca status|rotate`: the cluster CA and its rotation, clients of /v1/ca. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { HushError } from '../../errors/index.js';
import { parseDuration } from '../../rules/index.js';
import type { ApiClient } from '../client.js';
import { formatOption, printJson, printTable, type Format } from '../output.js';
// Types only: erased at build, so the CLI loads nothing of the API.
import type { CaRotationReport, CaStatus } from '../../api/index.js';

const POLL_MS = 1000;

export function caCommand(client: () => Promise<ApiClient>): Command {
  const ca = new Command('ca').description('the cluster CA: status and rotation');

  ca.command('status')
    .description('the active CA fingerprint and, during a rotation, which nodes hold a certificate of the new CA')
    .addOption(formatOption())
    .action(async (opts: { format: Format }) => {
      const status = await (await client()).get<CaStatus>('/v1/ca');
      if (opts.format === 'json') return printJson(status);
      printStatus(status);
    });

  ca.command('rotate')
    .description('make a new cluster CA, cross-signed by the current one; the old CA is retired once every node holds a certificate of the new one')
    .option('--wait', 'return only when the old CA is retired, printing progress')
    .addOption(new Option('--timeout <duration>', 'with --wait: give up after this long (e.g. 90s, 30m; default 24h)').argParser(durationArg))
    .action(async (opts: { wait?: boolean; timeout?: number }) => {
      const api = await client();
      const report = await api.post<CaRotationReport>('/v1/ca/rotate');
      printReport(report);
      if (!opts.wait || report.retired) return;
      await waitForRetirement(api, report, (opts.timeout ?? 86_400) * 1000);
    });
  return ca;
}

function durationArg(text: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function printReport(r: CaRotationReport): void {
  const lines = [`CA rotation started: new CA ${r.fingerprint} (previous ${r.previousFingerprint})`];
  if (r.retired) {
    lines.push('No node to wait for: the previous CA is retired already.');
  } else {
    lines.push(
      `Nodes move to the new CA at their next certificate renewal (within ${Math.ceil(r.nodeCertSeconds / 2)} s; at most ${r.nodeCertSeconds} s, when their old certificates expire).`,
      `The previous CA is retired once all ${r.nodes.total} nodes have moved (${r.nodes.moved} now; \`hush ca status\`). Until then it is still trusted.`,
    );
  }
  const refresh: string[] = [];
  for (const c of r.refresh.adminCerts) refresh.push(`  admin certificate ${c.name} (${c.role}, serial ${c.serial}): hush cert renew ${c.name} --out DIR`);
  if (r.refresh.joinTokens.clusterWide) refresh.push('  the cluster-wide join token, wherever it is stored: hush join-token');
  for (const name of r.refresh.joinTokens.nodeNames) refresh.push(`  the join token of node name ${name}: hush join-token --node ${name}`);
  if (refresh.length > 0) {
    lines.push(`${r.retired ? 'Refresh now' : 'Refresh before then'}: certificates and tokens of the previous CA stop working when it is retired`, ...refresh);
    lines.push('  (HUSH_HOME of the store: renewed by the store itself)');
  }
  console.log(lines.join('\n'));
}

function printStatus(s: CaStatus): void {
  console.log(`active CA: ${s.fingerprint}`);
  if (!s.rotation) {
    console.log('no rotation running');
    return;
  }
  const r = s.rotation;
  console.log(`rotation from ${r.previousFingerprint}, started ${r.startedAt}: ${r.moved}/${r.total} nodes moved${r.complete ? ' (complete; retiring)' : ''}`);
  if (r.nodes.length === 0) return;
  printTable(
    ['NODE', 'NAME', 'STATE', 'MOVED', 'OLD CERTIFICATE ENDS'],
    r.nodes.map((n) => [n.node, n.name, n.state, n.moved ? 'yes' : n.expired ? 'expired' : 'no', n.oldCertificateEnds ?? '-']),
  );
}

async function waitForRetirement(api: ApiClient, report: CaRotationReport, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const status = await api.get<CaStatus>('/v1/ca');
    // Retired: no rotation any more, and the active CA is still ours (a later rotation would show another).
    if (!status.rotation) {
      console.log(`previous CA ${report.previousFingerprint} retired: every node holds a certificate of the new CA`);
      return;
    }
    const line = `${status.rotation.moved}/${status.rotation.total} nodes moved`;
    if (line !== last) console.log(line);
    last = line;
    if (Date.now() >= deadline) {
      const lagging = status.rotation.nodes.filter((n) => !n.moved && !n.expired).map((n) => `${n.name} (${n.node}, ${n.state})`);
      throw new HushError('timeout', `the previous CA is not retired yet; nodes still on it: ${lagging.join(', ')} (they move at their next renewal; \`hush node rm\` one that is gone)`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
