/**
 * The attribution stamp the guest agent's BPF program writes into the first SYN of each guest
 * TCP connection (docs/PROTOCOL.md, "The SYN stamp"): which guest process connected, so the
 * host can name it from what it already knows instead of asking the agent per connection.
 *
 * One RFC 6994 experimental option, 16 bytes: kind 254, length 16, ExID 0x574C ("WL"), the
 * process's pid (u32 little-endian, as the guest's BPF stores it) and its cgroup2 id (u64
 * little-endian). Guest-written: trusted only as far as the guest kernel is (OBSERVE.md).
 */

/** Who in the guest opened a TCP connection, as its first SYN says. */
export interface SynStamp {
  /** The connecting process's pid, as the guest's /proc shows it. */
  readonly pid: number;
  /** The cgroup2 id of its cgroup: tells a pid reused by another exec from the one seen. */
  readonly cgroup: bigint;
}

/** RFC 6994 shared experimental option kind. */
const KIND_EXPERIMENTAL = 254;
const STAMP_EXID = 0x574c;
const STAMP_OPTION_BYTES = 16;

/** One TCP option as it lies in the option list: kind, length, and where it starts. */
export interface TcpOption {
  readonly kind: number;
  readonly length: number;
  readonly offset: number;
}

/** Whether `opt` is an experimental option with our ExID, of any length. */
function isOurs(options: Buffer, opt: TcpOption): boolean {
  return (
    opt.kind === KIND_EXPERIMENTAL &&
    opt.length >= 4 &&
    options.readUInt16BE(opt.offset + 2) === STAMP_EXID
  );
}

/**
 * Collects the stamp from a SYN's options, one option at a time. Only exactly one well-formed
 * stamp counts: a second one, or one of the wrong length, means the SYN was not the agent's
 * alone (or is damaged), and a stamp the host cannot be sure of is worth less than none (the
 * host then asks the guest, as for a kernel that stamps nothing).
 */
export class StampReader {
  private found: SynStamp | undefined;
  private spoiled = false;

  option(options: Buffer, opt: TcpOption): void {
    if (!isOurs(options, opt)) return;
    if (this.found !== undefined || opt.length !== STAMP_OPTION_BYTES) {
      this.spoiled = true;
      return;
    }
    this.found = {
      pid: options.readUInt32LE(opt.offset + 4),
      cgroup: options.readBigUInt64LE(opt.offset + 8),
    };
  }

  /** The list ended before its end or ran past it: nothing in it is sure. */
  malformed(): void {
    this.spoiled = true;
  }

  get stamp(): SynStamp | undefined {
    return this.spoiled ? undefined : this.found;
  }
}
