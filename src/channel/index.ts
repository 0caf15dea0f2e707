/** Host side of the host<->guest agent protocol (docs/PROTOCOL.md). */
export { Channel, type ChannelOptions, type Hello } from "./channel.js";
export type { ExecExit, ExecRequest, ExecStream } from "./exec.js";
export type { FileData, WriteFileRequest } from "./open.js";
export type { PortStream } from "./port.js";
export {
  ConfigureTag,
  ErrorTag,
  ExecTag,
  FileListOkTag,
  FileListTag,
  FileReadOkTag,
  FileReadTag,
  FileStatTag,
  FileWriteTag,
  FrameType,
  HelloTag,
  INITIAL_WINDOW,
  MAX_PAYLOAD,
  MkdirTag,
  PortForwardTag,
  PROTOCOL_VERSION,
  RemoveTag,
  StartedTag,
  StatTag,
  frameTypeName,
} from "./constants.js";
export { DecodedRecord, decodeRecord, encodeRecord, field, type RecordField } from "./record.js";
export { decodeListEntry, decodeStat, type StatInfo } from "./stat.js";
export { GuestExecError, GuestFileError, errnoName } from "./guest-error.js";
export { FrameParser, encodeFrame, encodeFrameHeader, type Frame } from "./frame.js";
