import { describeBackendConformance } from '../helpers/backend-conformance.js';
import { embeddedSnapshottingTarget, embeddedTarget, etcdTarget, etcdWatchedTarget, useEtcdEndpoints } from '../helpers/backend-targets.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js';

describeBackendConformance('embedded engine', embeddedTarget);
describeBackendConformance('embedded engine, snapshot every 4 KiB', embeddedSnapshottingTarget);

describe('storage conformance on a real etcd cluster (3 members)', function () {
  let cluster: EtcdCluster;
  before(async function () {
    this.timeout(60_000);
    cluster = await startEtcdCluster(3);
    useEtcdEndpoints(cluster.endpoints);
  });
  after(async () => cluster?.stop());
  describeBackendConformance('etcd backend', etcdTarget);
  describeBackendConformance('etcd backend, read from its watched copy', etcdWatchedTarget);
});
