/** The compose file `hush compose` hands to docker compose (src/compose/docker-file.ts), from files loaded through an in-memory reader. */
import { expect } from 'chai';
import { parse } from 'yaml';
import { dockerComposeFile, loadWithModel, type ComposeReader } from '../../src/compose/index.js';

function readerOf(files: Record<string, string>): ComposeReader {
  return {
    read: (path: string) => {
      if (!Object.hasOwn(files, path)) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return new TextEncoder().encode(files[path]);
    },
  };
}

/** What the tests look at in the generated file. */
interface Generated {
  services: Record<string, { secrets?: unknown; extends?: unknown; image?: string; volumes?: unknown[]; environment?: Record<string, string> }>;
  volumes?: Record<string, unknown>;
}

const BASE = `name: shop
version: "3.8"
services:
  base:
    image: busybox
    secrets:
      - source: db_password
        target: password
        uid: "999"
        mode: 0400
  db:
    extends: base
    environment:
      PRICE: "costs $$5"
      GREETING: "\${WHO:-world}"
    volumes:
      - data:/var/lib/db
  plain:
    image: busybox
    command: ["echo", "no secrets"]
secrets:
  db_password:
    file: ./db.txt
volumes:
  data: {}
`;

const load = (compose: string, env: Record<string, string> = {}, readValues = true) =>
  loadWithModel({ files: ['/p/compose.yaml'], env, cwd: '/p', reader: readerOf({ '/p/compose.yaml': compose, '/p/db.txt': 'v4lue' }), readValues });

describe('compose: the file hush compose runs docker compose on', () => {
  it('replaces secrets by one hush volume per granted service, keeps the rest, holds no value', () => {
    const loaded = load(BASE, { WHO: 'hush' });
    const text = dockerComposeFile({ project: loaded.project, model: loaded.model, services: loaded.plan.services, driver: 'hush-x' });
    expect(text).to.not.include('v4lue');
    const out = parse(text, { version: '1.1' }) as Generated;
    // docker-compose 1.29 takes no top-level name:; version: and secrets: are hush's business.
    expect(Object.keys(out).sort()).to.deep.equal(['services', 'volumes']);
    expect(out.services.db.secrets).to.equal(undefined);
    expect(out.services.db.extends).to.equal(undefined);
    expect(out.services.db.image).to.equal('busybox');
    expect(out.services.db.volumes).to.deep.equal(['data:/var/lib/db', { type: 'volume', source: 'hush-secrets-db', target: '/run/secrets', read_only: true }]);
    expect(out.services.base.volumes).to.deep.equal([{ type: 'volume', source: 'hush-secrets-base', target: '/run/secrets', read_only: true }]);
    // No grants, no volume.
    expect(out.services.plain.volumes).to.equal(undefined);
    expect(out.volumes).to.deep.equal({
      data: {},
      'hush-secrets-base': { driver: 'hush-x', name: 'shop_base' },
      'hush-secrets-db': { driver: 'hush-x', name: 'shop_db' },
    });
    // Already interpolated here, so every "$" is doubled for compose to undo.
    expect(out.services.db.environment).to.deep.equal({ PRICE: 'costs $$5', GREETING: 'hush' });
    // The volume's hush service carries the grant as the file asked.
    expect(loaded.plan.services.find((s) => s.name === 'shop_db')?.grants).to.deep.equal([{ source: 'shop_db_password', target: 'password', uid: 999, gid: 0, mode: 0o400 }]);
  });

  it('quotes what YAML 1.1 would read otherwise (docker-compose 1.29 uses PyYAML)', () => {
    const loaded = load(`services:\n  a:\n    image: busybox\n    environment:\n      FLAG: "on"\n      PORTS: "80:80"\n`);
    const text = dockerComposeFile({ project: 'p', model: loaded.model, services: loaded.plan.services, driver: 'hush' });
    expect(text).to.match(/FLAG: "on"/);
    expect((parse(text, { version: '1.1' }) as Generated).services.a.environment).to.deep.equal({ FLAG: 'on', PORTS: '80:80' });
  });

  it('refuses a service that mounts something else at or under /run/secrets', () => {
    for (const volume of ['./x:/run/secrets', '{type: bind, source: ./x, target: /run/secrets/extra}']) {
      const loaded = load(BASE.replace('- data:/var/lib/db', `- ${volume}`));
      expect(() => dockerComposeFile({ project: 'shop', model: loaded.model, services: loaded.plan.services, driver: 'hush' })).to.throw(/where hush mounts the service's secrets/);
    }
  });

  it('leaves values unread when asked (hush compose down): no file, no variable needed', () => {
    const compose = `services:\n  a:\n    image: busybox\n    secrets: [tok, f]\nsecrets:\n  tok:\n    environment: UNSET_TOKEN\n  f:\n    file: ./missing.txt\n`;
    expect(() => load(compose)).to.throw(/not set|cannot read/);
    const loaded = load(compose, {}, false);
    expect(loaded.plan.secrets.map((s) => [s.name, s.data])).to.deep.equal([['p_tok', undefined], ['p_f', undefined]]);
    expect(loaded.plan.services[0]?.grants.map((g) => g.target)).to.deep.equal(['tok', 'f']);
  });
});
