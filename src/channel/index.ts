/**
 * Host side of the host<->guest agent contract (docs/PROTOCOL.md): the typed agent, its
 * request and result types, its errors, and the names both sides agree on. Wire details
 * (frame types, record tags, the codec) stay inside this folder.
 */
export { GuestAgent } from "./agent.js";
export type { ChannelOptions as GuestAgentOptions, Hello } from "./channel.js";
export type { ExecExit, ExecRequest, ExecStream } from "./exec.js";
export {
  MAX_ATTRIBUTE_KEYS,
  MAX_ATTRIBUTION_ARGS,
  MAX_ATTRIBUTION_ARGV_BYTES,
  type AttributionKey,
  type GuestAttribution,
  type GuestUsage,
} from "./attribution.js";
export type { FileData, WriteFileRequest } from "./open.js";
export type { PortStream } from "./port.js";
export type { GuestSettings, NetworkSetupRequest } from "./requests.js";
export type { StatInfo } from "./stat.js";
export { GuestExecError, GuestFileError, errnoName } from "./guest-error.js";
export { CmdlineKey, DiskSerial, PortName, extraDiskSerial, kernelArg } from "./contract.js";
