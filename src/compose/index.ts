/**
 * compose: compose files → a deploy plan (the body of `POST /v1/deploy`).
 * Pure apart from reading the compose files, the `.env` beside the first one
 * and `file:` secrets, all through a ComposeReader.
 */
export { loadComposeProject, loadWithModel, type LoadResult } from './load.js';
export { type DeployPlan } from './plan.js';
export { ComposeError } from './errors.js';
export { type ComposeReader } from './reader.js';
export { dockerComposeFile } from './docker-file.js';
