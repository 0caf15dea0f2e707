import { createServer, type Server, type Socket } from "node:net";
import { FrameDecoder, encodeFrame } from "./frame-codec.js";
import { NetworkStack, type NetworkStackOptions } from "./stack.js";

/** Frames queued toward the guest before flows stop sending (per link, not per flow). */
const LINK_HIGH_WATER_BYTES = 2 * 1024 * 1024;
/**
 * Past this, frames are dropped as a congested router would (TCP resends them). Only senders
 * that ignore `linkWritable` (ACKs, resets) can get here, so it bounds the link's memory.
 */
const LINK_DROP_BYTES = 8 * 1024 * 1024;

export type NetworkLinkOptions = Omit<NetworkStackOptions, "sendFrame" | "linkWritable">;

/**
 * The unix socket QEMU's `-netdev stream,server=off` connects to. Exactly one connection is
 * accepted (QEMU's); the listener closes right after, so nothing else can join the link.
 */
export class NetworkLink {
  readonly stack: NetworkStack;
  private socket: Socket | undefined;
  private closed = false;
  /** Frames toward the guest dropped because QEMU was not reading. */
  droppedFrames = 0;

  private constructor(
    private readonly server: Server,
    opts: NetworkLinkOptions,
  ) {
    this.stack = new NetworkStack({
      ...opts,
      sendFrame: (frame) => this.send(frame),
      linkWritable: () =>
        this.socket !== undefined && this.socket.writableLength < LINK_HIGH_WATER_BYTES,
    });
    server.on("connection", (socket) => this.attach(socket));
  }

  private send(frame: Buffer): void {
    const socket = this.socket;
    if (!socket || socket.destroyed) return;
    if (socket.writableLength > LINK_DROP_BYTES) {
      this.droppedFrames++;
      return;
    }
    socket.write(encodeFrame(frame));
  }

  static listen(path: string, opts: NetworkLinkOptions): Promise<NetworkLink> {
    return new Promise((resolve, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(path, () => {
        server.off("error", reject);
        server.on("error", () => undefined);
        resolve(new NetworkLink(server, opts));
      });
    });
  }

  private attach(socket: Socket): void {
    this.server.close();
    if (this.closed || this.socket) {
      socket.destroy();
      return;
    }
    this.socket = socket;
    const decoder = new FrameDecoder((frame) => this.stack.handleFrame(frame));
    socket.on("data", (chunk: Buffer) => decoder.push(chunk));
    socket.on("drain", () => this.stack.linkDrained());
    socket.on("error", () => undefined); // QEMU going away ends the link; close() cleans up
    socket.on("close", () => this.stack.close());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    this.stack.close();
    this.socket?.destroy();
  }
}
