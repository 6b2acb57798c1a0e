import { expect } from 'chai';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadComposeProject, type LoadResult } from '../../src/compose/index.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const FIXTURES = resolve('test/fixtures/compose');
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const NS = 'com.docker.stack.namespace';

describe('compose: loading real-style compose files', () => {
  it('postgres with POSTGRES_PASSWORD_FILE: the secret file, the grant, the project from the directory', () => {
    const result = loadComposeProject({ files: [join(FIXTURES, 'postgres/compose.yaml')], env: {} });
    expect(result).to.deep.equal({
      project: 'postgres',
      plan: {
        project: 'postgres',
        secrets: [{ key: 'db_password', name: 'postgres_db_password', external: false, labels: { [NS]: 'postgres' }, data: bytes('fake-postgres-password\n') }],
        services: [{ name: 'postgres_db', grants: [{ source: 'postgres_db_password', target: 'db_password', uid: 0, gid: 0, mode: 0o444 }], constraints: [] }],
      },
      ignoredFields: ['services.*.environment', 'services.*.healthcheck', 'services.*.image', 'services.*.restart', 'services.*.volumes', 'volumes'],
      warnings: [],
    } satisfies LoadResult);
  });

  it('an nginx TLS bundle: YAML 1.1 octal modes, /run/secrets/ targets, uid/gid as text or numbers, constraints', () => {
    const result = loadComposeProject({ files: [join(FIXTURES, 'nginx-tls/compose.yaml')], env: {} });
    const read = (name: string): Uint8Array => new Uint8Array(readFileSync(join(FIXTURES, 'nginx-tls/certs', name)));
    expect(result.project).to.equal('edge');
    expect(result.plan.secrets).to.deep.equal([
      { key: 'site_crt', name: 'edge_site_crt', external: false, labels: { [NS]: 'edge' }, data: read('site.crt') },
      { key: 'site_key', name: 'edge_site_key', external: false, labels: { 'com.example.kind': 'tls-key', [NS]: 'edge' }, data: read('site.key') },
      { key: 'dhparam', name: 'edge_dhparam', external: false, labels: { [NS]: 'edge' }, data: read('dhparam.pem') },
    ]);
    expect(result.plan.services).to.deep.equal([
      {
        name: 'edge_proxy',
        grants: [
          { source: 'edge_site_crt', target: 'site.crt', uid: 0, gid: 0, mode: 0o444 },
          { source: 'edge_site_key', target: 'site.key', uid: 101, gid: 101, mode: 0o400 },
          { source: 'edge_dhparam', target: 'dhparam.pem', uid: 0, gid: 101, mode: 0o440 },
        ],
        constraints: ['node.labels.edge==true', 'node.role!=manager'],
      },
    ]);
    expect(result.ignoredFields).to.deep.equal(['configs', 'services.*.configs', 'services.*.deploy.replicas', 'services.*.image', 'services.*.ports']);
  });

  it('a multi-service app: external secrets, .env interpolation, an environment: secret, anchors and merge keys', () => {
    const result = loadComposeProject({ files: [join(FIXTURES, 'webapp/compose.yaml')], env: {} });
    expect(result.project).to.equal('webapp');
    expect(result.plan.secrets).to.deep.equal([
      { key: 'stripe_key', name: 'stripe_key', external: true, labels: {} },
      // name: comes from .env (DB_SECRET_NAME) and is used as written, unscoped.
      { key: 'db_password', name: 'shop_db_password_v2', external: true, labels: {} },
      { key: 'session_key', name: 'webapp_session_key', external: false, labels: { [NS]: 'webapp' }, data: bytes('fake-session-key') },
      { key: 'api_token', name: 'webapp_api_token', external: false, labels: { [NS]: 'webapp' }, data: bytes('tok-from-dotenv') },
    ]);
    expect(result.plan.services).to.deep.equal([
      { name: 'webapp_web', grants: [{ source: 'webapp_session_key', target: 'session.key', uid: 1000, gid: 1000, mode: 0o440 }], constraints: [] },
      {
        name: 'webapp_api',
        grants: [
          { source: 'stripe_key', target: 'stripe_key', uid: 0, gid: 0, mode: 0o444 },
          { source: 'webapp_api_token', target: 'api_token', uid: 0, gid: 0, mode: 0o444 },
          // The store name of an external secret with name:, mounted under its compose key.
          { source: 'shop_db_password_v2', target: 'db_password', uid: 0, gid: 0, mode: 0o444 },
        ],
        constraints: ['node.labels.zone==eu-west'],
      },
      { name: 'webapp_worker', grants: [{ source: 'stripe_key', target: 'stripe_key', uid: 0, gid: 0, mode: 0o444 }], constraints: [] },
    ]);
    // Fields from the <<: *common merge key count as the services' own.
    expect(result.ignoredFields).to.deep.equal([
      'services.*.command',
      'services.*.depends_on',
      'services.*.environment',
      'services.*.image',
      'services.*.logging',
      'services.*.restart',
    ]);
    // "$$5" is a literal and every variable is set: no warnings.
    expect(result.warnings).to.deep.equal([]);
  });

  it('the process environment wins over .env', () => {
    const result = loadComposeProject({
      files: [join(FIXTURES, 'webapp/compose.yaml')],
      env: { ZONE: 'us-east', API_TOKEN: 'tok-from-process', APP_UID: '2000', COMPOSE_PROJECT_NAME: 'shop' },
    });
    expect(result.project).to.equal('shop');
    const api = result.plan.services.find((s) => s.name === 'shop_api');
    expect(api?.constraints).to.deep.equal(['node.labels.zone==us-east']);
    expect(result.plan.secrets.find((s) => s.key === 'api_token')?.data).to.deep.equal(bytes('tok-from-process'));
    expect(result.plan.services.find((s) => s.name === 'shop_web')?.grants[0]).to.include({ uid: 2000, gid: 2000 });
  });

  it('override files merge: mappings by key, service secrets by target, constraints without repeats, !reset and !override', () => {
    const result = loadComposeProject({
      files: [join(FIXTURES, 'override/compose.yaml'), join(FIXTURES, 'override/compose.prod.yaml')],
      env: { APP_KEY: 'prod-app-key' },
    });
    expect(result).to.deep.equal({
      project: 'override',
      plan: {
        project: 'override',
        secrets: [
          // file: !reset null removed the dev file; environment: from the override gives the value.
          { key: 'app_key', name: 'override_app_key', external: false, labels: { 'com.example.rotated': 'monthly', [NS]: 'override' }, data: bytes('prod-app-key') },
          { key: 'tls_cert', name: 'override_tls_cert', external: false, labels: { [NS]: 'override' }, data: bytes('fake-dev-cert') },
          { key: 'sentry_dsn', name: 'sentry_dsn', external: true, labels: {} },
        ],
        services: [
          {
            name: 'override_app',
            grants: [
              { source: 'override_app_key', target: 'app_key', uid: 0, gid: 0, mode: 0o444 },
              // Same target cert.pem in both files: one grant, the later mode.
              { source: 'override_tls_cert', target: 'cert.pem', uid: 0, gid: 0, mode: 0o400 },
              { source: 'sentry_dsn', target: 'sentry_dsn', uid: 0, gid: 0, mode: 0o444 },
            ],
            constraints: ['node.labels.tier==web', 'node.labels.env==prod'],
          },
        ],
      },
      ignoredFields: ['services.*.deploy.replicas', 'services.*.image', 'services.*.ports'],
      warnings: [],
    } satisfies LoadResult);
  });

  it('loads the base file alone, unaffected by the override', () => {
    const result = loadComposeProject({ files: [join(FIXTURES, 'override/compose.yaml')], env: {} });
    expect(result.plan.secrets.map((s) => [s.key, new TextDecoder().decode(s.data)])).to.deep.equal([
      ['app_key', 'dev-app-key'],
      ['tls_cert', 'fake-dev-cert'],
    ]);
    expect(result.plan.services[0].constraints).to.deep.equal(['node.labels.tier==web']);
  });
});

describe('compose: rules checked on small files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('hush-compose-');
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  function write(files: Record<string, string>): void {
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
  }
  function load(files: Record<string, string>, opts: { env?: Record<string, string>; project?: string; use?: string[] } = {}): LoadResult {
    write(files);
    return loadComposeProject({ files: opts.use ?? ['compose.yaml'], cwd: dir, env: opts.env ?? {}, projectName: opts.project });
  }
  const withSecret = (entry: string): string => `services:\n  api:\n    secrets:\n      - source: pw\n${entry}\nsecrets:\n  pw:\n    environment: PW\n`;

  describe('modes, as Docker reads them', () => {
    const modes: [string, number][] = [
      ['0400', 0o400], // YAML 1.1 octal: the classic compose spelling
      ['0440', 0o440],
      ['0o400', 0o400],
      ['0O640', 0o640],
      ['"0400"', 0o400], // text is octal
      ['"400"', 0o400],
      ['"0o440"', 0o440],
      ['256', 256], // a plain number is decimal: 256 = 0o400
      ['292', 0o444],
      ['0', 0],
      ['0777', 0o777],
      ['511', 0o777],
      ['"${MODE}"', 0o600], // interpolated text is octal too
    ];
    for (const [yaml, mode] of modes) {
      it(`mode: ${yaml} → 0o${mode.toString(8)}`, () => {
        const r = load({ 'compose.yaml': withSecret(`        mode: ${yaml}`) }, { env: { PW: 'x', MODE: '0600' }, project: 'p' });
        expect(r.plan.services[0].grants[0].mode).to.equal(mode);
      });
    }
    it('defaults to 0444, uid 0, gid 0, target = the key', () => {
      const r = load({ 'compose.yaml': withSecret('        x-note: defaults') }, { env: { PW: 'x' }, project: 'p' });
      expect(r.plan.services[0].grants).to.deep.equal([{ source: 'p_pw', target: 'pw', uid: 0, gid: 0, mode: 0o444 }]);
    });
    it('reads 0400 as octal everywhere, as yaml.v3 does, but leaves quoted and non-octal text alone', () => {
      const r = load({ 'compose.yaml': 'services:\n  api:\n    secrets:\n      - source: pw\n        uid: 0100\n        gid: "0100"\nsecrets:\n  pw:\n    environment: PW\n' }, { env: { PW: 'x' }, project: 'p' });
      expect(r.plan.services[0].grants[0]).to.include({ uid: 64, gid: 100 });
    });
  });

  describe('project name', () => {
    const files = (name?: string): Record<string, string> => ({ 'compose.yaml': `${name === undefined ? '' : `name: ${name}\n`}services:\n  api:\n    image: "x:\${COMPOSE_PROJECT_NAME}"\n` });
    it('-p wins over everything', () => {
      write({ '.env': 'COMPOSE_PROJECT_NAME=fromdotenv\n' });
      expect(load(files('fromfile'), { project: 'fromflag', env: { COMPOSE_PROJECT_NAME: 'fromenv' } }).project).to.equal('fromflag');
    });
    it('then COMPOSE_PROJECT_NAME from the process, then from .env', () => {
      write({ '.env': 'COMPOSE_PROJECT_NAME=fromdotenv\n' });
      expect(load(files('fromfile'), { env: { COMPOSE_PROJECT_NAME: 'fromenv' } }).project).to.equal('fromenv');
      expect(load(files('fromfile')).project).to.equal('fromdotenv');
    });
    it('then the top-level name: (the last file that has one), interpolated', () => {
      expect(load(files('fromfile')).project).to.equal('fromfile');
      expect(load(files('"${STAGE}-shop"'), { env: { STAGE: 'qa' } }).project).to.equal('qa-shop');
      write({ 'over.yaml': 'name: lastname\n' });
      expect(load(files('fromfile'), { use: ['compose.yaml', 'over.yaml'] }).project).to.equal('lastname');
    });
    it("then the first file's directory, normalised as compose does", () => {
      write({ 'My App.V2/compose.yaml': 'services:\n  api:\n    image: x\n', '_-Straße 9/compose.yaml': 'services:\n  api:\n    image: x\n' });
      expect(loadComposeProject({ files: ['My App.V2/compose.yaml'], cwd: dir, env: {} }).project).to.equal('myappv2');
      expect(loadComposeProject({ files: ['_-Straße 9/compose.yaml'], cwd: dir, env: {} }).project).to.equal('strae9');
    });
    it('is what COMPOSE_PROJECT_NAME interpolates to, and prefixes services and created secrets', () => {
      const r = load({ 'compose.yaml': 'services:\n  api:\n    image: x\n    secrets: [pw]\nsecrets:\n  pw:\n    environment: PW\n    labels:\n      owner: "${COMPOSE_PROJECT_NAME}"\n' }, { project: 'shop', env: { PW: 'x' } });
      expect(r.plan.services[0].name).to.equal('shop_api');
      expect(r.plan.secrets[0]).to.deep.include({ name: 'shop_pw', labels: { owner: 'shop', [NS]: 'shop' } });
    });
  });

  it('reads file: relative to the first compose file, as compose does for every file it merges', () => {
    const r = load(
      {
        'app/compose.yaml': 'services:\n  api:\n    secrets: [pw]\nsecrets:\n  pw:\n    file: ./pw.txt\n',
        'app/pw.txt': 'base',
        'overrides/prod.yaml': 'secrets:\n  pw:\n    file: ./prod-pw.txt\n',
        'app/prod-pw.txt': 'from-the-base-dir',
        'overrides/prod-pw.txt': 'from-the-override-dir',
      },
      { use: ['app/compose.yaml', 'overrides/prod.yaml'], project: 'p' },
    );
    expect(r.plan.secrets[0].data).to.deep.equal(bytes('from-the-base-dir'));
  });

  it('reads .env beside the first file only, and an absolute file: as is', () => {
    write({ 'abs-secret': 'absolute' });
    const r = load(
      {
        'app/compose.yaml': `services:\n  api:\n    image: "x:\${TAG}"\n    secrets: [pw]\nsecrets:\n  pw:\n    file: ${join(dir, 'abs-secret')}\n`,
        'app/.env': 'TAG=from-app\n',
        '.env': 'TAG=from-cwd\n',
      },
      { use: ['app/compose.yaml'], project: 'p' },
    );
    expect(r.warnings).to.deep.equal([]);
    expect(r.plan.secrets[0].data).to.deep.equal(bytes('absolute'));
  });

  it('warns once per unset variable, naming where it was first used, and about version:', () => {
    const r = load({ 'compose.yaml': 'version: "3.8"\nservices:\n  a:\n    image: "x:$TAG"\n  b:\n    image: "y:${TAG}"\n    labels: ["$OTHER"]\n' }, { project: 'p' });
    expect(r.warnings).to.deep.equal([
      'compose.yaml:4: services.a.image: variable "TAG" is not set; using an empty string',
      'compose.yaml:7: services.b.labels[0]: variable "OTHER" is not set; using an empty string',
      'compose.yaml:1: version: the attribute "version" is obsolete and ignored',
    ]);
  });

  it('lists ignored fields once, across services, deploy and placement, without x- extensions', () => {
    const r = load(
      {
        'compose.yaml': [
          'x-shared: {a: 1}',
          'services:',
          '  a:',
          '    image: x',
          '    x-meta: 1',
          '    deploy: {replicas: 2, resources: {limits: {cpus: "0.5"}}, placement: {preferences: [{spread: node.labels.zone}], constraints: [node.role==worker]}}',
          '  b:',
          '    image: y',
          '    networks: [front]',
          '    deploy: {replicas: 1}',
          'networks:',
          '  front: {}',
          'secrets:',
          '  s:',
          '    environment: S',
          '    template_driver: golang',
          '',
        ].join('\n'),
      },
      { project: 'p', env: { S: 'v' } },
    );
    expect(r.ignoredFields).to.deep.equal([
      'networks',
      'secrets.*.template_driver',
      'services.*.deploy.placement.preferences',
      'services.*.deploy.replicas',
      'services.*.deploy.resources',
      'services.*.image',
      'services.*.networks',
    ]);
    expect(r.plan.services.map((s) => [s.name, s.constraints])).to.deep.equal([
      ['p_a', ['node.role==worker']],
      ['p_b', []],
    ]);
  });

  it('accepts the old external: {name: N} form and an external secret with name:', () => {
    const r = load({ 'compose.yaml': 'secrets:\n  a:\n    external:\n      name: legacy_a\n  b:\n    external: true\n    name: explicit_b\n  c:\n    external: "true"\n' }, { project: 'p' });
    expect(r.plan.secrets).to.deep.equal([
      { key: 'a', name: 'legacy_a', external: true, labels: {} },
      { key: 'b', name: 'explicit_b', external: true, labels: {} },
      { key: 'c', name: 'c', external: true, labels: {} },
    ]);
  });

  it('labels as a list, and name: for a created secret (used as is, still labelled with the project)', () => {
    const r = load({ 'compose.yaml': 'secrets:\n  a:\n    environment: A\n    name: Team.Secret-1\n    labels: ["tier=db", "flag"]\n' }, { project: 'p', env: { A: 'v' } });
    expect(r.plan.secrets).to.deep.equal([{ key: 'a', name: 'Team.Secret-1', external: false, labels: { tier: 'db', flag: '', [NS]: 'p' }, data: bytes('v') }]);
  });

  it('extends a service by name: inherited secrets and constraints are applied, the local ones merged by target', () => {
    const r = load(
      {
        'compose.yaml': [
          'services:',
          '  base:',
          '    image: x',
          '    secrets: [a, {source: b, mode: 0400}]',
          '    deploy: {placement: {constraints: [node.role==worker]}}',
          '  web:',
          '    extends: base',
          '    secrets: [{source: b, mode: 0440}]',
          '  job:',
          '    extends: {service: web}',
          'secrets:',
          '  a: {environment: A}',
          '  b: {environment: A}',
          '',
        ].join('\n'),
      },
      { project: 'p', env: { A: 'v' } },
    );
    const grants = Object.fromEntries(r.plan.services.map((s) => [s.name, s.grants.map((g) => `${g.target}:${g.mode.toString(8)}`)]));
    expect(grants).to.deep.equal({ p_base: ['a:444', 'b:400'], p_web: ['a:444', 'b:440'], p_job: ['a:444', 'b:440'] });
    expect(r.plan.services.every((s) => s.constraints[0] === 'node.role==worker')).to.equal(true);
    expect(r.ignoredFields).to.deep.equal(['services.*.image']);
  });

  it('a secret defined but granted to no service is still planned (as docker stack deploy creates it)', () => {
    const r = load({ 'compose.yaml': 'secrets:\n  unused:\n    environment: U\n' }, { project: 'p', env: { U: 'v' } });
    expect(r.plan).to.deep.equal({ project: 'p', secrets: [{ key: 'unused', name: 'p_unused', external: false, labels: { [NS]: 'p' }, data: bytes('v') }], services: [] });
  });

  it('keeps a value byte for byte: binary file:, trailing newline, no decoding', () => {
    const raw = new Uint8Array([0, 255, 10, 13, 0x80, 0xc3]);
    write({ 'bin.dat': '' });
    writeFileSync(join(dir, 'bin.dat'), raw);
    const r = load({ 'compose.yaml': 'secrets:\n  b:\n    file: bin.dat\n' }, { project: 'p' });
    expect(r.plan.secrets[0].data).to.deep.equal(raw);
  });
});
