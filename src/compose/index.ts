/**
 * compose: compose files → a deploy plan (the body of `POST /v1/deploy`).
 * Pure apart from reading the compose files, the `.env` beside the first one
 * and `file:` secrets, all through a ComposeReader.
 */
export { loadComposeProject, type LoadResult } from './load.js';
export { ComposeError } from './errors.js';
