/** Host listeners for published ports, and the control-socket side of `port-forward`. */
import type { Socket } from "node:net";
import type { Sandbox } from "../sandbox/index.js";
import type { PortBinding } from "../state/index.js";
import { ErrInvalidConfig } from "../errors.js";
import type { Message } from "./wire.js";

export class PortForwarder {
  constructor(private readonly sandbox: Sandbox) {}

  /** Binds every published port; resolves with the bindings as bound. */
  async listenAll(ports: PortBinding[]): Promise<PortBinding[]> {
    if (ports.length > 0) {
      void this.sandbox;
      throw new ErrInvalidConfig("port forwarding is not available yet");
    }
    return ports;
  }

  relay(socket: Socket, port: number): (msg: Message) => void {
    void socket;
    throw new ErrInvalidConfig(`port forwarding to ${port} is not available yet`);
  }

  close(): void {}
}
