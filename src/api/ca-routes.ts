/** The cluster CA: its status and rotation (`hush ca status|rotate`). The work is the store's (server/ca-rotation.ts). */
import { Router } from 'express';
import type { ClusterControl } from './cluster-routes.js';

/** One node's progress onto the new CA. */
export interface CaNodeProgress {
  node: string;
  name: string;
  state: 'ready' | 'down';
  /** Its latest certificate comes from the new CA. */
  moved: boolean;
  certIssuedAt?: string;
  /** When its certificate of the previous CA stops working at the latest (not moved only). */
  oldCertificateEnds?: string;
  /** That certificate has expired: the node no longer holds the rotation up. */
  expired?: boolean;
}

export interface CaStatus {
  /** SHA-256 fingerprint of the active CA (what new join tokens carry). */
  fingerprint: string;
  /** Present while a rotation runs: the previous CA is still trusted. */
  rotation?: {
    previousFingerprint: string;
    startedAt: string;
    moved: number;
    total: number;
    complete: boolean;
    nodes: CaNodeProgress[];
  };
}

export interface CaRotationReport {
  fingerprint: string;
  previousFingerprint: string;
  startedAt: string;
  /** Nodes move on their next renewal: within half of this, or when their old certificate expires. */
  nodeCertSeconds: number;
  /** Already retired (no node to wait for). */
  retired: boolean;
  nodes: { moved: number; total: number };
  /** What operators must refresh before the previous CA is retired. */
  refresh: {
    adminCerts: { name: string; role: string; serial: string; notAfter: string }[];
    joinTokens: { clusterWide: boolean; nodeNames: string[] };
  };
}

export function caRoutes(cluster: () => ClusterControl): Router {
  const router = Router();
  router.get('/', async (_req, res) => {
    res.json(await cluster().caStatus());
  });
  router.post('/rotate', async (_req, res) => {
    res.status(201).json(await cluster().rotateCa());
  });
  return router;
}
