import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { COMPOSE_SPEC_SCHEMA } from '../../src/compose/compose-spec-schema.js';

describe('compose: the vendored compose-spec schema', () => {
  it('is the published file, unchanged (its content hash matches the one in its header)', () => {
    const header = readFileSync('src/compose/compose-spec-schema.ts', 'utf8');
    const recorded = /sha256 of JSON\.stringify\(COMPOSE_SPEC_SCHEMA\): ([0-9a-f]{64})/.exec(header)?.[1];
    expect(recorded, 'the header records the hash').to.be.a('string');
    expect(createHash('sha256').update(JSON.stringify(COMPOSE_SPEC_SCHEMA)).digest('hex')).to.equal(recorded);
  });

  it('is the compose spec (draft-07, with services and secrets definitions)', () => {
    expect(COMPOSE_SPEC_SCHEMA.$schema).to.equal('https://json-schema.org/draft-07/schema');
    expect(COMPOSE_SPEC_SCHEMA.title).to.equal('Compose Specification');
    const definitions = COMPOSE_SPEC_SCHEMA.definitions as Record<string, unknown>;
    expect(definitions).to.include.keys('service', 'secret', 'service_config_or_secret', 'deployment');
  });
});
