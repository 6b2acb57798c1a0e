/** acl: who may see what. Grants, placement, per-node entitlement, admin roles. Pure logic, no I/O. */
export {
  assertValidTarget,
  DEFAULT_GID,
  DEFAULT_MODE,
  DEFAULT_UID,
  MAX_ID,
  MAX_MODE,
  parseGrantSpec,
  validateGrants,
  type Grant,
} from './grants.js';
export {
  constraintMatches,
  explainMismatch,
  parseConstraint,
  type Constraint,
  type NodeView,
} from './constraints.js';
export { validateServiceSpec, type ServiceSpec } from './services.js';
export {
  decideContainerStart,
  diffEntitlement,
  entitledSecrets,
} from './entitlement.js';
export { ACTIONS, actionsOf, assertCan, can, ROLES, type Action, type Role } from './rbac.js';
export { actionForRequest, routePattern } from './routes.js';
export { assertTemplateInputsGranted, parseTemplate, templateReferences } from './templates.js';
