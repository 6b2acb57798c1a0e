/** The audit log over HTTP: /v1/audit, and who read what: /v1/audit/reads (the auditor role and up; see acl/routes.ts). */
import { Router, type Request } from 'express';
import { HushError } from '../errors/index.js';
import type { ReadRecord } from '../rotation/index.js';
import { assertValidName } from '../rules/index.js';
import type { AuditLog, AuditQuery } from '../store/index.js';

/** The nodes' read reports: undefined while the cluster side (the dispatcher) is not up. */
export type ReadSource = () => { reads(query: { secret?: string }): Promise<ReadRecord[]> } | undefined;

export function auditRoutes(audit: AuditLog, readSource: ReadSource): Router {
  const router = Router();

  router.get('/reads', async (req, res) => {
    const { secret } = req.query;
    if (secret !== undefined) assertValidName(secret, 'secret');
    const source = readSource();
    if (!source) throw new HushError('unavailable', 'the cluster side of the store is still starting; try again in a moment');
    res.json(await source.reads(secret === undefined ? {} : { secret }));
  });

  router.get('/', async (req, res) => {
    res.json(await audit.list(auditQuery(req)));
  });

  router.get('/verify', async (_req, res) => {
    res.json(await audit.verify());
  });

  return router;
}

function auditQuery(req: Request): AuditQuery {
  const query: AuditQuery = {};
  const { since, actor, limit } = req.query;
  if (since !== undefined) {
    if (typeof since !== 'string' || Number.isNaN(Date.parse(since))) throw new HushError('bad_request', `since must be a time such as 2025-01-31T12:00:00Z, not ${JSON.stringify(since)}`);
    query.since = new Date(Date.parse(since)).toISOString();
  }
  if (actor !== undefined) {
    if (typeof actor !== 'string' || actor.length > 256) throw new HushError('bad_request', 'actor must be one piece of text');
    query.actor = actor;
  }
  if (limit !== undefined) {
    if (typeof limit !== 'string' || !/^[1-9][0-9]{0,6}$/.test(limit)) throw new HushError('bad_request', `limit must be a number from 1 to 9999999, not ${JSON.stringify(limit)}`);
    query.limit = Number(limit);
  }
  return query;
}
