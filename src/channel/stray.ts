/**
 * Frames for streams the host no longer has. The spec says to ignore them (they can race
 * with a CLOSE) but to count them, so a guest cannot make the host spin on garbage.
 *
 * - After the host CLOSEs a stream, the guest may still have frames in flight: each such
 *   stream gets its own allowance of `limit` frames.
 * - Ids the host never opened share one allowance of `limit` frames per session.
 * - A stream the guest itself ended (OK/ERROR/EXIT) cannot race: a frame there is a
 *   protocol error ("EXIT twice").
 * Nothing is stored for guest-ended streams: "opened, not live, not closed by the host"
 * already means that. Memory stays bounded: only the newest MAX_TRACKED closed ids are remembered; older ones
 * fall back to the shared allowance.
 */
import { ErrProtocol } from "../errors.js";
import { FrameType, frameTypeName } from "./contract.js";
import type { Frame } from "./frame.js";

const MAX_TRACKED = 1024;
const TERMINAL: ReadonlySet<number> = new Set<number>([
  FrameType.Ok,
  FrameType.Error,
  FrameType.Exit,
]);

export class StrayFrameGuard {
  private readonly closedByHost = new Map<number, number>();
  private highestOpened = 0;
  /** Ids at or below this are no longer tracked individually. */
  private untrackedBelow = 0;
  private sharedLeft: number;

  constructor(private readonly limit: number) {
    this.sharedLeft = limit;
  }

  opened(id: number): void {
    this.highestOpened = id;
  }

  hostClosed(id: number): void {
    this.closedByHost.set(id, this.limit);
    if (this.closedByHost.size > MAX_TRACKED) {
      const oldest = this.closedByHost.keys().next().value;
      if (oldest !== undefined) {
        this.closedByHost.delete(oldest);
        this.untrackedBelow = Math.max(this.untrackedBelow, oldest);
      }
    }
  }

  /** Throws ErrProtocol when the frame must not be tolerated. */
  check(frame: Frame): void {
    const { streamId: id, type } = frame;
    const left = this.closedByHost.get(id);
    if (left !== undefined) {
      if (TERMINAL.has(type)) this.closedByHost.delete(id);
      else if (left <= 0)
        throw new ErrProtocol(`too many frames on stream ${id} after the host closed it`);
      else this.closedByHost.set(id, left - 1);
      return;
    }
    if (id <= this.highestOpened && id > this.untrackedBelow) {
      throw new ErrProtocol(
        `${frameTypeName(type)} on stream ${id}, which the guest already ended`,
      );
    }
    if (--this.sharedLeft < 0)
      throw new ErrProtocol(`more than ${this.limit} frames for unknown streams`);
  }
}
