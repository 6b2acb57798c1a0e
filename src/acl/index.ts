/** acl: who may see what. Grants, placement, per-node entitlement, admin roles. Pure logic, no I/O. */
export {
  assertValidTarget,
  DEFAULT_GID,
  DEFAULT_MODE,
  DEFAULT_UID,
  MAX_ID,
  MAX_MODE,
  MAX_TARGET_BYTES,
  parseGrantSpec,
  validateGrants,
  type Grant,
} from './grants.js';
export {
  constraintMatches,
  DEFAULT_ROLE,
  explainMismatch,
  nodeDisplayName,
  parseConstraint,
  type Constraint,
  type ConstraintOp,
  type NodeView,
} from './constraints.js';
export { listServices, lookupService, validateServiceSpec, type ServiceIndex, type ServiceSpec } from './services.js';
export {
  decideContainerStart,
  diffEntitlement,
  entitledSecrets,
  type ContainerStartInput,
  type RunningContainer,
  type StartDecision,
} from './entitlement.js';
export { ACTIONS, actionsOf, assertCan, can, isAction, isRole, ROLES, type Action, type Role } from './rbac.js';
export { actionForRequest, routePattern } from './routes.js';
export { assertTemplateInputsGranted, parseTemplate, templateReferences, type TemplatePart } from './templates.js';
