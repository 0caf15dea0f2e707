export { chooseAccel, detectAccel, probeHostVirt } from "./accel.js";
export type { Accel, AccelChoice, AccelDecision, HostVirtFacts } from "./accel.js";
export {
  planQemuLaunch,
  kernelCommandLine,
  INCOMING_STATE_FD,
  SAVE_STATE_FD,
  QEMU_SECCOMP,
  qemuCpuModel,
} from "./qemu-args.js";
export type { LaunchDescriptor, QemuLaunchPlan, VmDisk, VmSpec } from "./qemu-args.js";
export { QemuProcess, findQemuBinary, logTail } from "./qemu-process.js";
export { openImageFile, openPinnedFile } from "./launch-descriptors.js";
export type { QemuExit } from "./qemu-process.js";
export { VmStateSaver, startIncoming, waitUntilRunning } from "./save-state.js";
export type { SavedState, SaveOptions } from "./save-state.js";
export { QmpClient } from "./qmp.js";
export { JAIL_ID_BASE } from "./jail-ids.js";
export { SNAPSHOT_RAM_GID, kvmGroups, mayOpen, shareSnapshotRam } from "./jail.js";
