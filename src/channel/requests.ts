/** Encoders for the request records with more than a field or two; they throw RangeError for requests the wire cannot carry. */
import { ConfigureTag, ExecTag, NetworkSetupTag } from "./contract.js";
import type { ExecRequest } from "./exec.js";
import { encodeRecord, field, type RecordField } from "./record.js";

export function encodeExecRequest(req: ExecRequest): Buffer {
  if (req.argv.length === 0) throw new RangeError("exec: argv must not be empty");
  const fields: RecordField[] = [];
  for (const arg of req.argv) fields.push(field.string(ExecTag.Argv, arg));
  for (const entry of req.env) fields.push(field.string(ExecTag.Env, entry));
  if (req.cwd !== undefined) fields.push(field.string(ExecTag.Cwd, req.cwd));
  if (req.user !== undefined) fields.push(field.string(ExecTag.User, req.user));
  if (req.tty !== undefined) {
    fields.push(
      field.u8(ExecTag.Tty, 1),
      field.u32(ExecTag.Rows, req.tty.rows),
      field.u32(ExecTag.Cols, req.tty.cols),
    );
  }
  return encodeRecord(fields);
}

/** What CONFIGURE sets; each part is optional (a snapshot warm-up sends only a hostname). */
export interface GuestSettings {
  /** Wall clock for the guest, read by the caller right before sending. */
  timeUnixMs?: number;
  /** 1-64 characters from `[A-Za-z0-9.-]`. */
  hostname?: string;
  /** 1-256 bytes of host entropy for the guest RNG. */
  seed?: Uint8Array;
  /**
   * true: hold every exec's processes (cgroup v2 freezer) until a CONFIGURE with false; sent
   * last, so a thaw comes after the new seed (a copy's processes never run on its source's
   * RNG state).
   */
  freeze?: boolean;
}

export function encodeConfigure(settings: GuestSettings, token: number): RecordField[] {
  // TOKEN first: the agent applies it before anything that could fail, so even an ERROR
  // reply carries the new token.
  const fields = [field.u32(ConfigureTag.Token, token)];
  if (settings.timeUnixMs !== undefined)
    fields.push(field.u64(ConfigureTag.TimeUnixMs, settings.timeUnixMs));
  if (settings.seed !== undefined) fields.push(field.bytes(ConfigureTag.Seed, settings.seed));
  if (settings.hostname !== undefined)
    fields.push(field.string(ConfigureTag.Hostname, settings.hostname));
  if (settings.freeze !== undefined)
    fields.push(field.u32(ConfigureTag.Freeze, settings.freeze ? 1 : 0));
  return fields;
}

/** NETWORK_SETUP: the intercept CA and `/etc/hosts` lines, applied by the agent in one request. */
export interface NetworkSetupRequest {
  ca?: {
    /** PEM text; written as given (end it with a newline). */
    pem: string;
    /** Where the CA file goes (created 0644, parents 0755). */
    path: string;
    /** System bundles to append the PEM to: only those that exist as regular files and lack it. */
    bundlePaths: readonly string[];
  };
  /** Appended to `/etc/hosts`, one line each (no newline inside). */
  hostsLines?: readonly string[];
}

export function encodeNetworkSetup(req: NetworkSetupRequest): RecordField[] {
  const fields: RecordField[] = [];
  if (req.ca !== undefined) {
    fields.push(
      field.string(NetworkSetupTag.CaPem, req.ca.pem),
      field.string(NetworkSetupTag.CaPath, req.ca.path),
    );
    for (const bundle of req.ca.bundlePaths)
      fields.push(field.string(NetworkSetupTag.Bundle, bundle));
  }
  for (const line of req.hostsLines ?? []) {
    if (line.includes("\n")) throw new RangeError("hosts line contains a newline");
    fields.push(field.string(NetworkSetupTag.HostsLine, line));
  }
  return fields;
}
