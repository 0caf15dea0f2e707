/** The stat record shared by FILE_STAT replies and FILE_LIST entries. */
import { ErrProtocol } from "../errors.js";
import { StatTag } from "./contract.js";
import type { DecodedRecord } from "./record.js";

export interface StatInfo {
  /** Base name as the guest reported it. */
  readonly name: string;
  readonly sizeBytes: number;
  /** Full st_mode, file type bits included. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeMs: number;
  /** Symlinks only. */
  readonly linkTarget?: string;
}

/** Fields 1-6 are required (the spec lists them without "optional"); LINK only for symlinks. */
export function decodeStat(rec: DecodedRecord): StatInfo {
  const info: StatInfo = {
    name: rec.require(rec.string(StatTag.Name), "NAME"),
    sizeBytes: rec.require(rec.u64(StatTag.Size), "SIZE"),
    mode: rec.require(rec.u32(StatTag.Mode), "MODE"),
    uid: rec.require(rec.u32(StatTag.Uid), "UID"),
    gid: rec.require(rec.u32(StatTag.Gid), "GID"),
    mtimeMs: rec.require(rec.u64(StatTag.MtimeMs), "MTIME_MS"),
  };
  const linkTarget = rec.string(StatTag.Link);
  return linkTarget === undefined ? info : { ...info, linkTarget };
}

/**
 * A FILE_LIST entry name must be a plain base name: host code joins it onto a directory path,
 * so "", ".", ".." or a "/" from a hostile guest must never get that far.
 */
export function decodeListEntry(rec: DecodedRecord): StatInfo {
  const info = decodeStat(rec);
  if (info.name === "" || info.name === "." || info.name === ".." || info.name.includes("/")) {
    throw new ErrProtocol(`FILE_LIST entry with invalid name ${JSON.stringify(info.name)}`);
  }
  return info;
}
