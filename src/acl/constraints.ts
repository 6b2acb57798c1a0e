/**
 * Placement constraints in Docker Swarm's syntax, so a compose file's
 * `deploy.placement.constraints` means the same thing here as under Swarm.
 *
 * Like swarmkit: field names are case-insensitive, label keys are exact, and
 * values compare case-insensitively; `!=` on a label the node lacks is met.
 *
 * Two kinds of labels, kept apart as Swarm keeps them: `node.labels.K` are
 * set by an admin (`hush node label`), so a constraint on them is a statement
 * the cluster vouches for; `engine.labels.K` are what the agent reported about
 * itself (`hush agent --label`), as is `node.hostname`. Anyone holding a join
 * token can report anything, so a self-reported label never satisfies a
 * `node.labels` constraint.
 */
import { HushError } from '../errors/index.js';

/** What the acl needs to know about a node; the store's node record maps onto it. */
export interface NodeView {
  id: string;
  /** Self-reported by the agent. */
  hostname: string;
  /** Set by an admin: what `node.labels.K` constraints read. */
  labels: Record<string, string>;
  /** Self-reported by the agent at join: what `engine.labels.K` constraints read. Absent means none. */
  engineLabels?: Record<string, string>;
  /** Absent means "node": every hush agent is a plain node unless told otherwise. */
  role?: string;
}

export type ConstraintOp = '==' | '!=';

export type Constraint =
  | { field: 'label' | 'engine_label'; key: string; op: ConstraintOp; value: string; text: string }
  | { field: 'hostname' | 'id' | 'role'; op: ConstraintOp; value: string; text: string };

export const DEFAULT_ROLE = 'node';

const FORMS =
  'node.labels.KEY==VALUE, node.labels.KEY!=VALUE, engine.labels.KEY==VALUE, engine.labels.KEY!=VALUE, node.hostname==H, node.hostname!=H, node.id==ID, node.id!=ID, node.role==ROLE, node.role!=ROLE';
const LABEL_PREFIX = 'node.labels.';
const ENGINE_LABEL_PREFIX = 'engine.labels.';
const LABEL_KEY = /^[^\s=!,]+$/;
// "=" and "!" are refused in values so that typos such as "===" or "=!=" fail
// loudly instead of becoming a value that silently never matches.
// eslint-disable-next-line no-control-regex
const VALUE = /^[^=!\u0000-\u001f\u007f]+$/;

/** Parses one constraint; anything else is a bad_request that lists the accepted forms. */
export function parseConstraint(expr: string): Constraint {
  const bad = (why: string): HushError => new HushError('bad_request', `invalid constraint "${expr}": ${why}; accepted forms: ${FORMS}`);
  if (typeof expr !== 'string') throw bad('not a string');
  const eq = expr.indexOf('==');
  const ne = expr.indexOf('!=');
  // The first operator splits, so "a==b!=c" is key "a" with a value that is then refused.
  const at = eq < 0 ? ne : ne < 0 ? eq : Math.min(eq, ne);
  if (at < 0) throw bad('no == or != operator');
  const op = expr.slice(at, at + 2) as ConstraintOp;
  const left = expr.slice(0, at).trim();
  const value = expr.slice(at + 2).trim();
  if (value === '') throw bad('no value after the operator');
  if (!VALUE.test(value)) throw bad(`value "${value}" contains "=", "!" or a control character`);

  const field = left.toLowerCase();
  for (const [prefix, kind] of [[LABEL_PREFIX, 'label'], [ENGINE_LABEL_PREFIX, 'engine_label']] as const) {
    if (!field.startsWith(prefix)) continue;
    const key = left.slice(prefix.length);
    if (key === '') throw bad(`empty label key after ${prefix}`);
    if (!LABEL_KEY.test(key)) throw bad(`label key "${key}" contains spaces, "=", "!" or ","`);
    return { field: kind, key, op, value, text: `${prefix}${key}${op}${value}` };
  }
  switch (field) {
    case 'node.hostname':
    case 'node.id':
    case 'node.role': {
      const name = field.slice('node.'.length) as 'hostname' | 'id' | 'role';
      return { field: name, op, value, text: `${field}${op}${value}` };
    }
    default:
      throw bad(`unknown field "${left}"`);
  }
}

/** Own properties only: a label named "constructor" must not find Object's. */
function labelValue(labels: Record<string, string> | undefined, key: string): string | undefined {
  return labels !== undefined && Object.hasOwn(labels, key) ? labels[key] : undefined;
}

/** The node's value for a constraint's field, or undefined for a label it lacks. */
function nodeValue(c: Constraint, node: NodeView): string | undefined {
  switch (c.field) {
    case 'label':
      // Admin labels only, never the engine labels: see the header.
      return labelValue(node.labels, c.key);
    case 'engine_label':
      return labelValue(node.engineLabels, c.key);
    case 'hostname':
      return node.hostname;
    case 'id':
      return node.id;
    case 'role':
      return node.role ?? DEFAULT_ROLE;
  }
}

export function constraintMatches(c: Constraint, node: NodeView): boolean {
  const actual = nodeValue(c, node);
  const equal = actual !== undefined && actual.toLowerCase() === c.value.toLowerCase();
  return c.op === '==' ? equal : !equal;
}

/** How a node is named in messages: its hostname, which is what operators see in `hush node ls`. */
export function nodeDisplayName(node: NodeView): string {
  return node.hostname || node.id;
}

/**
 * Why the node fails the constraints (the first one it fails), or undefined
 * when it meets them all. Strings are parsed, so a bad one throws.
 */
export function explainMismatch(constraints: readonly (string | Constraint)[], node: NodeView): string | undefined {
  for (const item of constraints) {
    const c = typeof item === 'string' ? parseConstraint(item) : item;
    if (constraintMatches(c, node)) continue;
    const actual = nodeValue(c, node);
    const who = `node "${nodeDisplayName(node)}"`;
    return `constraint ${c.text} not met: ${who} ${describeActual(c, node, actual)}`;
  }
  return undefined;
}

function describeActual(c: Constraint, node: NodeView, actual: string | undefined): string {
  switch (c.field) {
    case 'label': {
      if (actual !== undefined) return `has ${c.key}=${actual}`;
      // The likely confusion after this change: an agent started with --label expects it to count.
      const reported = labelValue(node.engineLabels, c.key);
      return reported === undefined
        ? `has no label ${c.key}`
        : `has no label ${c.key} set by an admin (its self-reported engine.labels.${c.key}=${reported} does not count; an admin sets node labels with \`hush node label\`)`;
    }
    case 'engine_label':
      return actual === undefined ? `reports no engine label ${c.key}` : `reports engine label ${c.key}=${actual}`;
    default:
      return `has ${c.field} ${actual}`;
  }
}
