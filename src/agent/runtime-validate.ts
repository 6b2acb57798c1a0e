/**
 * The runtime API's request bodies, checked with JSON Schema the way the
 * admin API checks its own: unknown fields are refused, so a typo is an error
 * rather than a silently ignored option.
 */
import type { JSONSchemaType } from 'ajv';
import { constants } from 'node:os';
import { validator } from '../http/index.js';
import { CONTAINER_ID_PATTERN } from '../rules/index.js';
import type { ContainerStartRequest } from './containers.js';

/** The store checks the same rule on what agents report (src/rules). */
export const CONTAINER_ID = CONTAINER_ID_PATTERN;
/** The store's rule for object names (src/rules). */
const SERVICE_NAME = '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$';

const SIGNALS = Object.keys(constants.signals) as NodeJS.Signals[];

export const validateContainerRequest = validator<ContainerStartRequest>('container', {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'service'],
  properties: {
    id: { type: 'string', pattern: CONTAINER_ID },
    service: { type: 'string', pattern: SERVICE_NAME },
    pid: { type: 'integer', minimum: 2, nullable: true },
    pidStartTime: { type: 'integer', minimum: 0, nullable: true },
    reloadSignal: { type: 'string', enum: SIGNALS, nullable: true },
  },
} as JSONSchemaType<ContainerStartRequest>, {
  id: '1 to 128 letters, digits, "_", "." or "-", starting with a letter or digit',
  service: '1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit',
});
