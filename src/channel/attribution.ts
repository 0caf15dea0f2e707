/**
 * ATTRIBUTE and USAGE (docs/PROTOCOL.md): which exec a guest process or socket belongs to, and
 * what only the guest can count. Requests and replies as typed values; a reply that breaks the
 * spec is a protocol error (ops.ts validates it while handling the frame).
 */
import { ErrProtocol } from "../errors.js";
import {
  AttributeOkTag,
  AttributeTag,
  AttributionKind,
  AttributionState,
  AttributionTag,
  UsageOkTag,
} from "./contract.js";
import { field, type DecodedRecord, type RecordField } from "./record.js";

/** Keys one ATTRIBUTE request may carry (the agent refuses more). */
export const MAX_ATTRIBUTE_KEYS = 64;
/** A command line in a reply: arguments, and their bytes (NULs between them included). */
export const MAX_ATTRIBUTION_ARGS = 16;
export const MAX_ATTRIBUTION_ARGV_BYTES = 512;

/** What to attribute: a guest process, or the guest socket bound to a local port. */
export type AttributionKey =
  | { readonly kind: "pid"; readonly key: number }
  | { readonly kind: "tcp"; readonly key: number }
  | { readonly kind: "udp"; readonly key: number };

/** The guest's answer for one key. */
export interface GuestAttribution {
  readonly kind: AttributionKey["kind"];
  readonly key: number;
  /** gone: no such process or socket (any more); exec: started by an exec; none: by no exec. */
  readonly state: "gone" | "exec" | "none";
  /** state exec: the exec's stream id. */
  readonly execStream?: number;
  /** The process (for sockets: the one holding it); absent when gone. */
  readonly pid?: number;
  /** Its command line (at most 16 arguments, 512 bytes); absent for kernel threads. */
  readonly argv?: readonly string[];
  /**
   * The cgroup2 id of its cgroup; absent when gone, and from agents older than the SYN stamp
   * or without cgroup2. Matched against a SYN stamp's, never reported.
   */
  readonly cgroup?: bigint;
}

const KIND_TAG = {
  pid: AttributeTag.Pid,
  tcp: AttributeTag.TcpPort,
  udp: AttributeTag.UdpPort,
} as const;
const KIND_NAME = new Map<number, AttributionKey["kind"]>([
  [AttributionKind.Pid, "pid"],
  [AttributionKind.Tcp, "tcp"],
  [AttributionKind.Udp, "udp"],
]);
const STATE_NAME = new Map<number, GuestAttribution["state"]>([
  [AttributionState.Gone, "gone"],
  [AttributionState.Exec, "exec"],
  [AttributionState.NoExec, "none"],
]);

export function encodeAttributeRequest(keys: readonly AttributionKey[]): RecordField[] {
  if (keys.length > MAX_ATTRIBUTE_KEYS)
    throw new RangeError(`at most ${MAX_ATTRIBUTE_KEYS} ATTRIBUTE keys, got ${keys.length}`);
  return keys.map((k) => field.u32(KIND_TAG[k.kind], k.key));
}

function decodeEntry(rec: DecodedRecord): GuestAttribution {
  const kindNumber = rec.require(rec.u8(AttributionTag.Kind), "KIND");
  const stateNumber = rec.require(rec.u8(AttributionTag.State), "STATE");
  const kind = KIND_NAME.get(kindNumber);
  const state = STATE_NAME.get(stateNumber);
  if (kind === undefined) throw new ErrProtocol(`ATTRIBUTE reply: unknown KIND ${kindNumber}`);
  if (state === undefined) throw new ErrProtocol(`ATTRIBUTE reply: unknown STATE ${stateNumber}`);
  const key = rec.require(rec.u32(AttributionTag.Key), "KEY");
  if (state === "gone") return { kind, key, state };
  const execStream = rec.u32(AttributionTag.Exec);
  if ((state === "exec") !== (execStream !== undefined))
    throw new ErrProtocol("ATTRIBUTE reply: EXEC must come with STATE exec, and only then");
  const pid = rec.require(rec.u32(AttributionTag.Pid), "PID");
  const argv = rec.strings(AttributionTag.Arg);
  const cgroup = rec.u64BigInt(AttributionTag.Cgroup);
  // The host keeps answers (a few thousand): a guest must not make each one large.
  // NUL-separated, the last one maybe cut short (the agent reads that many bytes of it).
  const argvBytes = argv.reduce((n, a, i) => n + Buffer.byteLength(a) + (i > 0 ? 1 : 0), 0);
  if (argv.length > MAX_ATTRIBUTION_ARGS || argvBytes > MAX_ATTRIBUTION_ARGV_BYTES)
    throw new ErrProtocol(
      `ATTRIBUTE reply: command line over ${MAX_ATTRIBUTION_ARGS} arguments or ${MAX_ATTRIBUTION_ARGV_BYTES} bytes`,
    );
  return {
    kind,
    key,
    state,
    pid,
    ...(execStream !== undefined ? { execStream } : {}),
    ...(argv.length > 0 ? { argv } : {}),
    ...(cgroup !== undefined ? { cgroup } : {}),
  };
}

/** One entry per key asked, in the order asked. */
export function decodeAttributeReply(rec: DecodedRecord): GuestAttribution[] {
  return rec.records(AttributeOkTag.Entry).map(decodeEntry);
}

export interface GuestUsage {
  /** Bytes the guest wrote to its disks (root layer, extra disks) since it booted. */
  readonly diskWrittenBytes: number;
}

export function decodeUsageReply(rec: DecodedRecord): GuestUsage {
  return {
    diskWrittenBytes: rec.require(rec.u64(UsageOkTag.DiskWrittenBytes), "DISK_WRITTEN_BYTES"),
  };
}
