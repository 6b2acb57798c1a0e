/**
 * compose: compose files → a deploy plan (the body of `POST /v1/deploy`).
 * Pure apart from reading the compose files, the `.env` beside the first one
 * and `file:` secrets, all through a ComposeReader.
 */
export { loadComposeProject, loadWithModel, type LoadOptions, type LoadResult, type LoadWithModel } from './load.js';
export { STACK_NAMESPACE_LABEL, type DeployPlan, type PlannedSecret } from './plan.js';
export { ComposeError, type ComposeLocation } from './errors.js';
export { fileSystemReader, type ComposeReader } from './reader.js';
export { normaliseProjectName } from './project-name.js';
export { dockerComposeFile, hushVolumeKey, type DockerFileOptions } from './docker-file.js';
