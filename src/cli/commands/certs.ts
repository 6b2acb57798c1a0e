/** `hush cert create|ls|renew|revoke`: admin client certificates, clients of /v1/certs. */
import { Command, Option } from 'commander';
import { join } from 'node:path';
import { HushError } from '../../errors/index.js';
import { assertAbsent, assertPrivateDirectory, createPrivateFile, makePrivateDirectory } from '../../files/index.js';
import type { ApiClient } from '../client.js';
import { certTtlOption } from '../input.js';
import { listCommand } from './object-commands.js';
// Types only: erased at build, so the CLI loads nothing of the API.
import type { AdminCertView as CertRecord, IssuedAdminCert as IssuedCert } from '../../api/index.js';

/** Key first: if anything fails later, the key is already where only the caller can read it. */
const CREDENTIAL_FILES = ['key.pem', 'cert.pem', 'ca.pem'] as const;
const enc = encodeURIComponent;
const shortTime = (iso: string) => iso.slice(0, 16).replace('T', ' ');

export function certCommand(client: () => Promise<ApiClient>): Command {
  const cert = new Command('cert').description('admin client certificates: issue, list, renew, revoke');

  cert
    .command('create')
    .description('issue a client certificate with a role into a directory (ca.pem, cert.pem, key.pem; usable as HUSH_HOME or DOCKER_CERT_PATH)')
    .argument('<name>', "who it is for (the certificate's common name); unique among certificates in use")
    .addOption(new Option('--role <role>', 'what it may do').choices(['admin', 'operator', 'auditor']).makeOptionMandatory())
    .requiredOption('--out <dir>', 'directory to write into: yours and not writable by others (created 0700); the files must not exist')
    .addOption(certTtlOption('--ttl <duration>', 'lifetime, e.g. 30d, 12h (default 30d, at most 90d)'))
    .action(async (name: string, opts: { role: string; out: string; ttl?: number }) => {
      await prepareOut(opts.out);
      const issued = await (await client()).post<IssuedCert>('/v1/certs', { name, role: opts.role, ...(opts.ttl !== undefined ? { ttlSeconds: opts.ttl } : {}) });
      await writeCredentials(opts.out, issued);
      console.log(`wrote ${issued.role} credentials for ${issued.name} to ${opts.out} (serial ${issued.serial}, expires ${issued.notAfter})`);
    });

  cert.addCommand(
    listCommand<CertRecord>(
      client,
      { plural: 'admin client certificates', collection: '/v1/certs', argument: 'names' },
      ['NAME', 'ROLE', 'SERIAL', 'STATUS', 'EXPIRES (UTC)'],
      (c) => [c.name, c.role, c.serial, c.status, shortTime(c.notAfter)],
      'list admin client certificates: active, expired, revoked and superseded',
    ),
  );

  cert
    .command('renew')
    .description('issue a new certificate for a name (same role) into a directory; the old one stops working at once')
    .argument('<name>', 'the certificate name')
    .requiredOption('--out <dir>', 'directory to write into: yours and not writable by others (created 0700); the files must not exist')
    .addOption(certTtlOption('--ttl <duration>', 'lifetime of the new certificate, e.g. 30d, 12h (default 30d, at most 90d)'))
    .action(async (name: string, opts: { out: string; ttl?: number }) => {
      await prepareOut(opts.out);
      const issued = await (await client()).post<IssuedCert>(`/v1/certs/${enc(name)}/renew`, opts.ttl !== undefined ? { ttlSeconds: opts.ttl } : {});
      await writeCredentials(opts.out, issued);
      console.log(`renewed ${issued.name} into ${opts.out}: serial ${issued.serial}, expires ${issued.notAfter}; the old certificate ${issued.replaced} no longer works`);
    });

  cert
    .command('revoke')
    .description('revoke certificates by name (its current certificate) or serial: refused at once, open connections closed')
    .argument('<name-or-serial...>', 'certificate names or serials')
    .action(async (targets: string[]) => {
      const c = await client();
      for (const target of targets) {
        const revoked = await c.post<CertRecord>(`/v1/certs/${enc(target)}/revoke`);
        console.log(`revoked ${revoked.serial} (${revoked.name}, ${revoked.role})`);
      }
    });
  return cert;
}

/**
 * Everything that can be checked locally is checked before the store issues
 * anything (an issued certificate holds its name); a missing directory is
 * created only once there is something to put in it.
 */
async function prepareOut(dir: string): Promise<void> {
  if (await assertPrivateDirectory(dir)) await assertAbsent(dir, [...CREDENTIAL_FILES]);
}

async function writeCredentials(dir: string, issued: IssuedCert): Promise<void> {
  const contents: Record<(typeof CREDENTIAL_FILES)[number], string> = { 'key.pem': issued.keyPem, 'cert.pem': issued.certPem, 'ca.pem': issued.caPem };
  try {
    await makePrivateDirectory(dir);
    for (const file of CREDENTIAL_FILES) await createPrivateFile(join(dir, file), contents[file]);
  } catch (err) {
    throw new HushError(
      'conflict',
      `certificate ${issued.serial} ("${issued.name}") was issued but could not be written: ${(err as Error).message}. Revoke it with \`hush cert revoke ${issued.serial}\` and try again`,
    );
  }
}
