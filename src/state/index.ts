/** Records of long-lived sandboxes under the data dir: crash-safe, reconciled on every read. */
export {
  controlSocketPath,
  LIVE_STATUSES,
  logPath,
  sandboxDir,
  sandboxesDir,
  statePath,
  type PortBinding,
  type SandboxRecord,
  type SandboxStatus,
} from "./record.js";
export {
  getRecord,
  listRecords,
  loadRecord,
  reconcile,
  removeRecordDir,
  writeRecord,
} from "./store.js";
export {
  pidAlive,
  processCommandLine,
  processStartTicks,
  sameProcessAlive,
} from "../util/index.js";
export { collectGarbage, type GcReport } from "./gc.js";
export { newRecord } from "./new-record.js";
export { removeSandbox, removeSettledSandbox, stopSandbox } from "./manage.js";
