/**
 * The stock docker CLI against a real `hush store`: `docker secret
 * create|ls|inspect|rm` over the admin HTTPS listener with DOCKER_CERT_PATH
 * pointing at HUSH_HOME. Runs every docker binary found: Debian's 20.10
 * (/usr/bin/docker, installed by scripts/setup) and the newer one that comes
 * with the machine image (/usr/local/bin/docker) when there is one.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hush, startStoreProcess, stopProcess, waitForCluster, type StoreProcess } from '../helpers/hush-process.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

/** Debian's 20.10 client must be there (setup installs it); a newer one is tested when the machine has it. */
const REQUIRED_DOCKER = '/usr/bin/docker';
const OPTIONAL_DOCKERS = ['/usr/local/bin/docker'];
const dockers = [REQUIRED_DOCKER, ...OPTIONAL_DOCKERS.filter((path) => existsSync(path))];

interface DockerSecretJson {
  ID: string;
  Version: { Index: number };
  CreatedAt: string;
  UpdatedAt: string;
  Spec: { Name: string; Labels: Record<string, string> };
}

describe('stock docker CLI against hush (integration)', function () {
  this.timeout(120_000);
  let dir: string;
  let store: StoreProcess;
  let port: string;

  before(async () => {
    dir = await tempDir();
    store = await startStoreProcess({ data: join(dir, 'data'), socket: join(dir, 'admin.sock'), home: dir, extraArgs: ['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'] });
    port = new URL((await waitForCluster(dir)).adminAddress).port;
    // A throwaway docker config so the host's ~/.docker is neither read nor written.
    await mkdir(join(dir, 'docker-config'));
    // A directory with the CA only: the CLI verifies the store but has no client certificate to show.
    await mkdir(join(dir, 'ca-only'));
    await copyFile(join(dir, 'ca.pem'), join(dir, 'ca-only', 'ca.pem'));
    expect(hush(['cert', 'create', 'alice', '--role', 'auditor', '--out', join(dir, 'auditor')], { env: { HUSH_HOME: dir, HUSH_HOST: '' } }).status).to.equal(0);
  });
  after(async () => {
    await stopProcess(store);
    await removeDir(dir);
  });

  it(`finds the docker CLI at ${REQUIRED_DOCKER} (scripts/setup installs Debian's docker.io)`, () => {
    expect(existsSync(REQUIRED_DOCKER), `${REQUIRED_DOCKER} is missing: run scripts/setup`).to.equal(true);
  });

  const hushSecrets = () => {
    const ls = hush(['secret', 'ls', '--format', 'json'], { env: { HUSH_HOME: dir, HUSH_HOST: '' } });
    expect(ls.status, ls.stderr).to.equal(0);
    return JSON.parse(ls.stdout) as { id: string; name: string; labels: Record<string, string> }[];
  };

  for (const binary of dockers) {
    describe(binary, () => {
      let tag: string;
      const docker = (args: string[], opts: { input?: string; certPath?: string } = {}) => {
        const result = spawnSync(binary, args, {
          input: opts.input ?? '',
          encoding: 'utf8',
          timeout: 30_000,
          env: {
            PATH: process.env.PATH,
            HOME: dir,
            DOCKER_CONFIG: join(dir, 'docker-config'),
            DOCKER_HOST: `tcp://127.0.0.1:${port}`,
            DOCKER_TLS_VERIFY: '1',
            DOCKER_CERT_PATH: opts.certPath ?? dir,
          },
        });
        return { status: result.status, stdout: result.stdout, stderr: result.stderr };
      };

      before(() => {
        const version = docker(['version', '--format', '{{.Client.Version}}']);
        expect(version.status, version.stderr).to.equal(0);
        // One set of names per binary, so each starts from a clean slate.
        tag = `v${version.stdout.trim().split('.')[0]}`;
      });

      it('creates from a file and from stdin with labels; the IDs are the ones hush lists', async () => {
        const file = join(dir, `value-${tag}`);
        await writeFile(file, 'from-a-file-value');
        const fromFile = docker(['secret', 'create', `${tag}_db_password`, file]);
        expect(fromFile.status, fromFile.stderr).to.equal(0);
        const fromStdin = docker(['secret', 'create', '--label', 'env=prod', '--label', 'team=core', `${tag}_api_key`, '-'], { input: 'from-stdin-value' });
        expect(fromStdin.status, fromStdin.stderr).to.equal(0);

        const listed = hushSecrets();
        const byName = new Map(listed.map((s) => [s.name, s]));
        expect(byName.get(`${tag}_db_password`)?.id).to.equal(fromFile.stdout.trim());
        expect(byName.get(`${tag}_api_key`)?.id).to.equal(fromStdin.stdout.trim());
        expect(byName.get(`${tag}_api_key`)?.labels).to.deep.equal({ env: 'prod', team: 'core' });
      });

      it('lists what hush lists, with --filter and --format', () => {
        const ls = docker(['secret', 'ls', '--format', '{{.ID}} {{.Name}}']);
        expect(ls.status, ls.stderr).to.equal(0);
        const fromDocker = ls.stdout.trim().split('\n').sort();
        expect(fromDocker).to.deep.equal(hushSecrets().map((s) => `${s.id} ${s.name}`).sort());

        const table = docker(['secret', 'ls']);
        expect(table.stdout).to.match(/^ID\s+NAME\s+DRIVER\s+CREATED\s+UPDATED/);

        const byName = docker(['secret', 'ls', '--filter', `name=${tag}_db`, '--format', '{{.Name}}']);
        expect(byName.stdout.trim().split('\n')).to.deep.equal([`${tag}_db_password`]);
        const byLabel = docker(['secret', 'ls', '--filter', 'label=env=prod', '--format', '{{.Name}}']);
        expect(byLabel.stdout.trim().split('\n')).to.include(`${tag}_api_key`).and.not.include(`${tag}_db_password`);
        const byLabelKey = docker(['secret', 'ls', '--filter', 'label=team', '--filter', `name=${tag}`, '--format', '{{.Name}}']);
        expect(byLabelKey.stdout.trim().split('\n')).to.deep.equal([`${tag}_api_key`]);
        const quiet = docker(['secret', 'ls', '-q', '--filter', `name=${tag}_api`]);
        expect(quiet.stdout.trim()).to.equal(hushSecrets().find((s) => s.name === `${tag}_api_key`)?.id);
        const none = docker(['secret', 'ls', '--filter', 'name=no_such_prefix', '--format', '{{.Name}}']);
        expect(none.status).to.equal(0);
        expect(none.stdout.trim()).to.equal('');

        const badFilter = docker(['secret', 'ls', '--filter', 'colour=red']);
        expect(badFilter.status).to.equal(1);
        expect(badFilter.stderr).to.match(/invalid filter 'colour'/);
      });

      it('inspects by name and by ID, never showing the value', () => {
        const byName = docker(['secret', 'inspect', `${tag}_api_key`]);
        expect(byName.status, byName.stderr).to.equal(0);
        const [secret] = JSON.parse(byName.stdout) as DockerSecretJson[];
        expect(secret!.Spec).to.deep.equal({ Name: `${tag}_api_key`, Labels: { env: 'prod', team: 'core' } });
        expect(secret!.Version.Index).to.be.a('number').above(0);
        expect(Date.parse(secret!.CreatedAt)).to.be.above(0);
        expect(byName.stdout).not.to.contain('from-stdin-value');
        expect(byName.stdout).not.to.contain(Buffer.from('from-stdin-value').toString('base64'));
        expect(byName.stdout).not.to.match(/"Data"/);

        const byId = docker(['secret', 'inspect', '--format', '{{.Spec.Name}}', secret!.ID]);
        expect(byId.stdout.trim()).to.equal(`${tag}_api_key`);
      });

      it('prints the store\'s errors as docker errors: duplicate, missing, empty value', () => {
        const duplicate = docker(['secret', 'create', `${tag}_api_key`, '-'], { input: 'again' });
        expect(duplicate.status).to.equal(1);
        expect(duplicate.stderr).to.match(/Error response from daemon: a secret named "v\d+_api_key" already exists/);
        expect(duplicate.stderr).not.to.contain('{"message"');

        const missing = docker(['secret', 'inspect', `${tag}_nope`]);
        expect(missing.status).to.equal(1);
        expect(missing.stderr).to.match(/No such secret|not found/);

        const before = hushSecrets().length;
        const badName = docker(['secret', 'create', 'bad!name', '-'], { input: 'x' });
        expect(badName.status).to.equal(1);
        expect(badName.stderr).to.match(/invalid secret name "bad!name"/);
        const empty = docker(['secret', 'create', `${tag}_empty`, '-'], { input: '' });
        expect(empty.status).to.equal(1);
        expect(hushSecrets().length).to.equal(before);
      });

      it('refuses a client without a certificate, and applies the certificate\'s role', () => {
        const anonymous = docker(['secret', 'ls'], { certPath: join(dir, 'ca-only') });
        expect(anonymous.status).to.equal(1);
        expect(anonymous.stderr).to.match(/certificate required|bad certificate|handshake/);

        const auditor = join(dir, 'auditor');
        const ls = docker(['secret', 'ls', '--format', '{{.Name}}'], { certPath: auditor });
        expect(ls.status, ls.stderr).to.equal(0);
        expect(ls.stdout).to.contain(`${tag}_api_key`);
        const inspect = docker(['secret', 'inspect', `${tag}_api_key`], { certPath: auditor });
        expect(inspect.status, inspect.stderr).to.equal(0);
        const create = docker(['secret', 'create', `${tag}_by_auditor`, '-'], { certPath: auditor, input: 'x' });
        expect(create.status).to.equal(1);
        expect(create.stderr).to.match(/role "auditor" may not secret.write/);
        const rm = docker(['secret', 'rm', `${tag}_api_key`], { certPath: auditor });
        expect(rm.status).to.equal(1);
        expect(rm.stderr).to.match(/role "auditor" may not secret.delete/);
        expect(hushSecrets().map((s) => s.name)).to.include(`${tag}_api_key`).and.not.include(`${tag}_by_auditor`);
      });

      it('removes by name and by ID; hush agrees', () => {
        const id = hushSecrets().find((s) => s.name === `${tag}_db_password`)!.id;
        const byId = docker(['secret', 'rm', id]);
        expect(byId.status, byId.stderr).to.equal(0);
        const byName = docker(['secret', 'rm', `${tag}_api_key`]);
        expect(byName.status, byName.stderr).to.equal(0);
        expect(byName.stdout.trim()).to.equal(`${tag}_api_key`);
        expect(hushSecrets().map((s) => s.name).filter((n) => n.startsWith(tag))).to.deep.equal([]);
        const again = docker(['secret', 'rm', `${tag}_api_key`]);
        expect(again.status).to.equal(1);
      });
    });
  }
});
