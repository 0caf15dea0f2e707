/** Turns an operation (and how it ended) into the event that reports it. */
import { toErrno } from "../errors.js";
import { HookBlocked } from "./engine.js";
import type { FileEventInfo, FileOpInfo } from "./types.js";

export function eventOf(info: FileOpInfo, errno: number, blocked = false): FileEventInfo {
  const { op, path, newPath, size, mode, uid, gid, pid, origin } = info;
  return {
    op,
    path,
    ...(newPath !== undefined ? { newPath } : {}),
    ...(size !== undefined ? { size } : {}),
    ...(mode !== undefined ? { mode } : {}),
    ...(uid !== undefined ? { uid, gid: gid ?? 0 } : {}),
    ...(pid !== undefined ? { pid } : {}),
    origin,
    errno,
    blocked,
  };
}

export function failedEvent(info: FileOpInfo, err: unknown): FileEventInfo {
  return eventOf(info, toErrno(err), err instanceof HookBlocked);
}
