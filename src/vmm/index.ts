export { chooseAccel, detectAccel, probeHostVirt } from "./accel.js";
export type { Accel, AccelChoice, AccelDecision, HostVirtFacts } from "./accel.js";
export { buildQemuArgs, kernelCommandLine, INCOMING_STATE_FD } from "./qemu-args.js";
export type { VmDisk, VmSpec } from "./qemu-args.js";
export { QemuProcess, findQemuBinary, logTail } from "./qemu-process.js";
export type { QemuExit } from "./qemu-process.js";
export { saveVmState, startIncoming } from "./save-state.js";
export { QmpClient } from "./qmp.js";
