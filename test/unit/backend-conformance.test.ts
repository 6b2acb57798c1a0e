import { describeBackendConformance } from '../helpers/backend-conformance.js';
import { embeddedSnapshottingTarget, embeddedTarget } from '../helpers/backend-targets.js';

describeBackendConformance('embedded engine', embeddedTarget);
describeBackendConformance('embedded engine, snapshot every 4 KiB', embeddedSnapshottingTarget);
