import { expect } from 'chai';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ComposeError, loadComposeProject } from '../../src/compose/index.js';
import { HushError } from '../../src/errors/index.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

/**
 * The table of broken compose files. Each is written to a real directory and
 * loaded with the real file reader; each must be refused with exactly this
 * one line, naming the file, the line and the path to fix.
 */
interface BrokenCase {
  name: string;
  files: Record<string, string>;
  /** Files to pass with -c, in order; default ['compose.yaml']. */
  use?: string[];
  env?: Record<string, string>;
  project?: string;
  message: string;
}

const GOOD_SECRETS = 'secrets:\n  db_pw:\n    file: ./db_pw.txt\n';

const cases: BrokenCase[] = [
  {
    name: 'an unknown service key',
    files: { 'compose.yaml': 'services:\n  api:\n    imagee: nginx\n' },
    message: 'compose.yaml:3: services.api.imagee: unknown key "imagee"; did you mean "image"?',
  },
  {
    name: 'an unknown top-level key',
    files: { 'compose.yaml': 'servics:\n  api:\n    image: nginx\n' },
    message: 'compose.yaml:1: servics: unknown key "servics"; did you mean "services"?',
  },
  {
    name: 'an unknown key in a long-syntax secret',
    files: { 'compose.yaml': `services:\n  api:\n    secrets:\n      - source: db_pw\n        mdoe: 0400\n${GOOD_SECRETS}` },
    message: 'compose.yaml:5: services.api.secrets[0].mdoe: unknown key "mdoe"; did you mean "mode"?',
  },
  {
    name: 'an unknown key in a top-level secret',
    files: { 'compose.yaml': 'secrets:\n  db_pw:\n    files: ./db_pw.txt\n' },
    message: 'compose.yaml:3: secrets.db_pw.files: unknown key "files"; did you mean "file"?',
  },
  {
    name: 'a service name with a space',
    files: { 'compose.yaml': 'services:\n  "my api":\n    image: nginx\n' },
    message: 'compose.yaml:2: services["my api"]: "my api" is not a valid name; use letters, digits, ".", "_" and "-"',
  },
  {
    name: 'a wrong type',
    files: { 'compose.yaml': `services:\n  api:\n    secrets: db_pw\n${GOOD_SECRETS}` },
    message: 'compose.yaml:3: services.api.secrets: must be a list, not "db_pw"',
  },
  {
    name: 'a mode that is neither number nor string',
    files: { 'compose.yaml': `services:\n  api:\n    secrets:\n      - source: db_pw\n        mode: true\n${GOOD_SECRETS}` },
    message: 'compose.yaml:5: services.api.secrets[0].mode: must be a number or a string, not "true"',
  },
  {
    name: 'a reference to an undefined secret (short syntax)',
    files: { 'compose.yaml': `services:\n  api:\n    secrets:\n      - db_pw\n      - api_key\n${GOOD_SECRETS}` },
    message: 'compose.yaml:5: services.api.secrets[1]: secret "api_key" is not defined in the top-level secrets: section',
  },
  {
    name: 'a reference to an undefined secret (long syntax)',
    files: { 'compose.yaml': `services:\n  api:\n    secrets:\n      - source: api_key\n        target: key\n${GOOD_SECRETS}` },
    message: 'compose.yaml:4: services.api.secrets[0].source: secret "api_key" is not defined in the top-level secrets: section',
  },
  {
    name: 'a long-syntax entry without source',
    files: { 'compose.yaml': `services:\n  api:\n    secrets:\n      - target: key\n${GOOD_SECRETS}` },
    message: 'compose.yaml:4: services.api.secrets[0]: source: is required (the key of a secret under the top-level secrets:)',
  },
  {
    name: 'a mode that is not octal text',
    files: { 'compose.yaml': `services:\n  api:\n    secrets:\n      - source: db_pw\n        mode: "rw"\n${GOOD_SECRETS}` },
    message: 'compose.yaml:5: services.api.secrets[0].mode: mode "rw" is not octal; write it like chmod, e.g. 0440',
  },
  {
    name: 'a mode with a leading zero and a digit 8',
    files: { 'compose.yaml': `services:\n  api:\n    secrets:\n      - source: db_pw\n        mode: 0800\n${GOOD_SECRETS}` },
    message:
      'compose.yaml:5: services.api.secrets[0].mode: mode 0800 is not octal (8 and 9 are not octal digits); give permission bits 0000..0777, e.g. 0440 (no setuid/setgid/sticky)',
  },
  {
    name: 'a decimal mode out of range (400 meant as octal would be fine; 640 is 0o1200)',
    files: { 'compose.yaml': `services:\n  api:\n    secrets:\n      - source: db_pw\n        mode: 640\n${GOOD_SECRETS}` },
    message:
      'compose.yaml:5: services.api.secrets[0].mode: mode 640 is out of range; give permission bits 0000..0777, e.g. 0440 (no setuid/setgid/sticky); a number without a leading 0 is decimal (640 is 0o1200), write 0640 for octal',
  },
  {
    name: 'a setuid mode',
    files: { 'compose.yaml': `services:\n  api:\n    secrets:\n      - source: db_pw\n        mode: 04755\n${GOOD_SECRETS}` },
    message: 'compose.yaml:5: services.api.secrets[0].mode: mode 04755 is out of range; give permission bits 0000..0777, e.g. 0440 (no setuid/setgid/sticky)',
  },
  {
    name: 'a uid that is not a number',
    files: { 'compose.yaml': `services:\n  api:\n    secrets:\n      - source: db_pw\n        uid: "www-data"\n${GOOD_SECRETS}` },
    message: 'compose.yaml:5: services.api.secrets[0].uid: uid "www-data" is not a number; give 0..4294967294',
  },
  {
    name: 'a target with ../',
    files: { 'compose.yaml': `services:\n  api:\n    secrets:\n      - source: db_pw\n        target: ../../etc/shadow\n${GOOD_SECRETS}` },
    message: 'compose.yaml:5: services.api.secrets[0].target: target "../../etc/shadow" contains ".."; targets are file names directly under /run/secrets',
  },
  {
    name: 'a target /run/secrets/../x',
    files: { 'compose.yaml': `services:\n  api:\n    secrets:\n      - source: db_pw\n        target: /run/secrets/../passwd\n${GOOD_SECRETS}` },
    message: 'compose.yaml:5: services.api.secrets[0].target: target "/run/secrets/../passwd" contains ".."; targets are file names directly under /run/secrets',
  },
  {
    name: 'an absolute target outside /run/secrets',
    files: { 'compose.yaml': `services:\n  api:\n    secrets:\n      - source: db_pw\n        target: /etc/ssl/private/key.pem\n${GOOD_SECRETS}` },
    message:
      'compose.yaml:5: services.api.secrets[0].target: target "/etc/ssl/private/key.pem" is outside /run/secrets; hush mounts secrets under /run/secrets only, so give a file name such as "key.pem" (or "/run/secrets/key.pem")',
  },
  {
    name: 'a target in a subdirectory',
    files: { 'compose.yaml': `services:\n  api:\n    secrets:\n      - source: db_pw\n        target: tls/key.pem\n${GOOD_SECRETS}` },
    message:
      'compose.yaml:5: services.api.secrets[0].target: target "tls/key.pem" contains "/"; targets are file names directly under /run/secrets, give a plain file name such as target=db_password',
  },
  {
    name: 'two entries on one target',
    files: { 'compose.yaml': `services:\n  api:\n    secrets:\n      - db_pw\n      - source: other\n        target: db_pw\n${GOOD_SECRETS}  other:\n    file: ./db_pw.txt\n` },
    message: 'compose.yaml:5: services.api.secrets[1]: target "db_pw" is already used by the entry at compose.yaml:4; give one of them another target:',
  },
  {
    name: 'a file: that does not exist',
    files: { 'compose.yaml': 'secrets:\n  db_pw:\n    file: ./missing.txt\n' },
    message: 'compose.yaml:3: secrets.db_pw.file: cannot read secret file "./missing.txt" (TMP/missing.txt): no such file',
  },
  {
    name: 'a file: that is a directory',
    files: { 'compose.yaml': 'secrets:\n  db_pw:\n    file: ./certs\n', 'certs/a.pem': 'x' },
    message: 'compose.yaml:3: secrets.db_pw.file: cannot read secret file "./certs" (TMP/certs): not a regular file',
  },
  {
    name: 'an empty file:',
    files: { 'compose.yaml': 'secrets:\n  db_pw:\n    file: ./empty.txt\n', 'empty.txt': '' },
    message: 'compose.yaml:3: secrets.db_pw.file: secret "db_pw" would be empty; a secret needs at least one byte',
  },
  {
    name: 'an environment: variable that is not set',
    files: { 'compose.yaml': 'secrets:\n  token:\n    environment: OAUTH_TOKEN\n' },
    message: 'compose.yaml:3: secrets.token.environment: environment variable "OAUTH_TOKEN" is not set (secret "token" takes its value from it)',
  },
  {
    name: 'a secret with no source of value',
    files: { 'compose.yaml': 'secrets:\n  token:\n    labels:\n      a: b\n' },
    message: 'compose.yaml:2: secrets.token: secret "token" needs file: (a path), environment: (a variable name) or external: true',
  },
  {
    name: 'a secret with both file: and environment:',
    files: { 'compose.yaml': 'secrets:\n  token:\n    file: ./db_pw.txt\n    environment: TOKEN\n' },
    message: 'compose.yaml:2: secrets.token: secret "token" has both file: and environment:; keep one',
  },
  {
    name: 'an external secret with a file:',
    files: { 'compose.yaml': 'secrets:\n  token:\n    external: true\n    file: ./db_pw.txt\n' },
    message: 'compose.yaml:4: secrets.token.file: secret "token" is external (it must exist already), so it cannot also have file:; remove one of them',
  },
  {
    name: 'a secret name: that is not a valid store name',
    files: { 'compose.yaml': 'secrets:\n  token:\n    external: true\n    name: "-token"\n' },
    message: 'compose.yaml:4: secrets.token.name: invalid secret name "-token": use letters, digits, "_", "." and "-", starting with a letter or digit',
  },
  {
    name: 'two secrets stored under one name',
    files: { 'compose.yaml': 'secrets:\n  a:\n    file: ./db_pw.txt\n    name: shared\n  b:\n    file: ./db_pw.txt\n    name: shared\n' },
    message: 'compose.yaml:5: secrets.b: secret "b" would be stored as "shared", like secret "a"; give one of them another name:',
  },
  {
    name: 'a required variable that is unset',
    files: { 'compose.yaml': `services:\n  api:\n    image: "shop/api:\${TAG:?TAG must be set}"\n` },
    message: 'compose.yaml:3: services.api.image: required variable TAG is missing a value: TAG must be set',
  },
  {
    name: 'a required variable that is empty in .env',
    files: { 'compose.yaml': 'secrets:\n  token:\n    environment: "${TOKEN_NAME:?TOKEN_NAME must be set}"\n', '.env': 'TOKEN_NAME=\n' },
    message: 'compose.yaml:3: secrets.token.environment: required variable TOKEN_NAME is missing a value: TOKEN_NAME must be set',
  },
  {
    name: 'a malformed variable',
    files: { 'compose.yaml': 'services:\n  api:\n    image: "shop/api:${TAG"\n' },
    message: 'compose.yaml:3: services.api.image: invalid interpolation format in "shop/api:${TAG": "${" without its "}"; write $$ for a literal $',
  },
  {
    name: 'a bad placement constraint',
    files: { 'compose.yaml': 'services:\n  api:\n    deploy:\n      placement:\n        constraints:\n          - node.role==manager\n          - node.labels.zone=eu\n' },
    message:
      'compose.yaml:7: services.api.deploy.placement.constraints[1]: invalid constraint "node.labels.zone=eu": no == or != operator; accepted forms: node.labels.KEY==VALUE, node.labels.KEY!=VALUE, engine.labels.KEY==VALUE, engine.labels.KEY!=VALUE, node.hostname==H, node.hostname!=H, node.id==ID, node.id!=ID, node.role==ROLE, node.role!=ROLE',
  },
  {
    name: 'bad YAML (a tab-indented block)',
    files: { 'compose.yaml': 'services:\n  api:\n\timage: nginx\n' },
    message: 'compose.yaml:3: invalid YAML: Tabs are not allowed as indentation',
  },
  {
    name: 'bad YAML (an unclosed quote)',
    files: { 'compose.yaml': 'services:\n  api:\n    image: "nginx\n    ports: []\n' },
    message: 'compose.yaml:3: invalid YAML: the " opened here is never closed',
  },
  {
    name: 'bad YAML (a key given twice)',
    files: { 'compose.yaml': 'services:\n  api:\n    image: a\n    image: b\n' },
    message: 'compose.yaml:4: invalid YAML: Map keys must be unique',
  },
  {
    name: 'an alias bomb',
    files: {
      'compose.yaml': ['a', 'b', 'c', 'd', 'e', 'f']
        .map((n, i) => (i === 0 ? `x-a: &a [${'"x",'.repeat(9)}"x"]` : `x-${n}: &${n} [${`*${'abcdef'[i - 1]},`.repeat(9)}*${'abcdef'[i - 1]}]`))
        .join('\n'),
    },
    message: 'compose.yaml:1: invalid YAML: Excessive alias count indicates a resource exhaustion attack',
  },
  {
    name: 'a mistake inside an anchor, reported where it is written',
    files: { 'compose.yaml': `x-ro: &ro\n  mode: 0999\nservices:\n  api:\n    secrets:\n      - <<: *ro\n        source: db_pw\n${GOOD_SECRETS}` },
    message:
      'compose.yaml:2: services.api.secrets[0].mode: mode 0999 is not octal (8 and 9 are not octal digits); give permission bits 0000..0777, e.g. 0440 (no setuid/setgid/sticky)',
  },
  {
    name: 'a !!binary value',
    files: { 'compose.yaml': 'secrets:\n  a: !!binary aGVsbG8=\n' },
    message: 'compose.yaml:2: secrets.a: a !!binary value has no place in a compose file; put the bytes in a file and use file:',
  },
  {
    name: 'a list instead of a mapping',
    files: { 'compose.yaml': '- services\n- secrets\n' },
    message: 'compose.yaml:1: must be a mapping, not a list',
  },
  {
    name: 'an empty file',
    files: { 'compose.yaml': '# nothing yet\n' },
    message: 'compose.yaml:1: the file is empty; a compose file is a mapping with services: and secrets:',
  },
  {
    name: 'a compose file that does not exist',
    files: {},
    message: 'compose.yaml: cannot read the compose file (TMP/compose.yaml): no such file',
  },
  {
    name: 'a mistake in an override file, reported in that file',
    files: {
      'compose.yaml': `services:\n  api:\n    image: nginx\n    secrets:\n      - db_pw\n${GOOD_SECRETS}`,
      'compose.prod.yaml': 'services:\n  api:\n    secrets:\n      - source: db_pw\n        mode: "0o999"\n',
      'db_pw.txt': 'pw',
    },
    use: ['compose.yaml', 'compose.prod.yaml'],
    message: 'compose.prod.yaml:5: services.api.secrets[0].mode: mode "0o999" is not octal; write it like chmod, e.g. 0440',
  },
  {
    name: 'a mistake in the base file, still reported there after an override merged the service',
    files: {
      'compose.yaml': `services:\n  api:\n    image: nginx\n    secrets:\n      - source: db_pw\n        target: /etc/db_pw\n${GOOD_SECRETS}`,
      'compose.prod.yaml': 'services:\n  api:\n    image: nginx:prod\n    secrets:\n      - source: db_pw\n        target: /etc/db_pw\n        uid: "70"\n',
    },
    use: ['compose.yaml', 'compose.prod.yaml'],
    message:
      'compose.prod.yaml:6: services.api.secrets[0].target: target "/etc/db_pw" is outside /run/secrets; hush mounts secrets under /run/secrets only, so give a file name such as "db_pw" (or "/run/secrets/db_pw")',
  },
  {
    name: 'a mistake in the base file that the override does not touch',
    files: {
      'compose.yaml': `services:\n  api:\n    image: nginx\n    secrets:\n      - source: db_pw\n        mode: 0999\n${GOOD_SECRETS}`,
      'compose.prod.yaml': 'services:\n  api:\n    image: nginx:prod\n    secrets:\n      - source: db_pw\n        uid: "70"\n',
    },
    use: ['compose.yaml', 'compose.prod.yaml'],
    message:
      'compose.yaml:6: services.api.secrets[0].mode: mode 0999 is not octal (8 and 9 are not octal digits); give permission bits 0000..0777, e.g. 0440 (no setuid/setgid/sticky)',
  },
  {
    name: 'an undefined secret referenced from an override file',
    files: {
      'compose.yaml': `services:\n  api:\n    image: nginx\n${GOOD_SECRETS}`,
      'compose.prod.yaml': '\nservices:\n  api:\n    secrets: [db_pw, prod_key]\n',
    },
    use: ['compose.yaml', 'compose.prod.yaml'],
    message: 'compose.prod.yaml:4: services.api.secrets[1]: secret "prod_key" is not defined in the top-level secrets: section',
  },
  {
    name: 'a bad line in .env',
    files: { 'compose.yaml': 'services:\n  api:\n    image: nginx\n', '.env': 'TAG=1\nthis is not a variable\n' },
    message: '.env:2: "this is not a variable" is not KEY=VALUE',
  },
  {
    name: 'an invalid -p',
    files: { 'compose.yaml': 'services:\n  api:\n    image: nginx\n' },
    project: 'My App',
    message: 'invalid project name "My App" (from -p): use lowercase letters, digits, "_" and "-", starting with a letter or digit, e.g. "myapp"',
  },
  {
    name: 'an invalid top-level name:',
    files: { 'compose.yaml': '# the shop\nname: Shop\nservices:\n  api:\n    image: nginx\n' },
    project: undefined,
    message: 'compose.yaml:2: name: invalid project name "Shop" (from name:): use lowercase letters, digits, "_" and "-", starting with a letter or digit, e.g. "shop"',
  },
  {
    name: 'a service name too long for the store with the project prefix',
    files: { 'compose.yaml': `services:\n  ${'s'.repeat(61)}:\n    image: nginx\n` },
    message: `compose.yaml:2: services.${'s'.repeat(61)}: service name "app_${'s'.repeat(61)}" is longer than 64 characters`,
  },
  {
    name: 'extends in a loop',
    files: { 'compose.yaml': 'services:\n  a:\n    extends: b\n  b:\n    extends:\n      service: a\n' },
    message: 'compose.yaml:5: services.b.extends: services extend each other in a loop: a -> b -> a',
  },
  {
    name: 'extends from another file',
    files: { 'compose.yaml': 'services:\n  a:\n    extends:\n      file: common.yaml\n      service: base\n' },
    message: 'compose.yaml:4: services.a.extends.file: extends with file: is not supported by hush deploy; give that file with another -c and extend the service by name',
  },
  {
    name: 'include',
    files: { 'compose.yaml': 'include:\n  - other.yaml\nservices:\n  a:\n    image: nginx\n' },
    message: 'compose.yaml:1: include: include: is not supported by hush deploy; give the included files with -c instead',
  },
];

describe('compose: broken files are refused with one line naming file, line and path', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('hush-compose-');
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  for (const c of cases) {
    it(c.name, () => {
      for (const [name, text] of Object.entries(c.files)) {
        mkdirSync(dirname(join(dir, name)), { recursive: true });
        writeFileSync(join(dir, name), text);
      }
      if (c.files['db_pw.txt'] === undefined && !c.name.includes('does not exist')) writeFileSync(join(dir, 'db_pw.txt'), 'pw');
      let err: unknown;
      try {
        loadComposeProject({ files: c.use ?? ['compose.yaml'], cwd: dir, env: c.env ?? {}, projectName: 'project' in c ? c.project : 'app' });
      } catch (e) {
        err = e;
      }
      expect(err, 'expected the file to be refused').to.be.instanceOf(ComposeError);
      // A HushError like every other user mistake: the CLI and the REST layer already know how to show it.
      expect(err).to.be.instanceOf(HushError);
      expect((err as HushError).code).to.equal('bad_request');
      const message = (err as Error).message.split(dir).join('TMP');
      expect(message).to.equal(c.message);
      expect(message).not.to.include('\n');
    });
  }
});
