// The transport ceiling: a guest `dd` straight into a raw virtio-serial port (no protocol)
// while the host drains the socket. The control channel and the FUSE relay both ride on
// virtio-serial, so this is the most either can move under the same conditions.
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import type { Sandbox } from "../src/index.js";

const MB = 1024 * 1024;
const RAW_PORT_NAME = "wheellock.raw";

export interface RawPort {
  /** Give this to `Sandbox.create(options, { rawPorts: [port] })`. */
  readonly port: { name: string; socketPath: string };
  /** QEMU's connection, once the VM has started. */
  readonly connection: Promise<Socket>;
  close(): void;
}

/** Listens on `raw.sock` in `dir` for the VM's raw port. */
export async function listenRawPort(dir: string): Promise<RawPort> {
  const socketPath = join(dir, "raw.sock");
  const server = createServer();
  const connection = new Promise<Socket>((r) => server.once("connection", r));
  await new Promise<void>((r) => server.listen(socketPath, r));
  return {
    port: { name: RAW_PORT_NAME, socketPath },
    connection,
    close: () => server.close(),
  };
}

/** Guest `dd` straight into a raw virtio-serial port while the host drains the socket. */
export async function rawSerialMBps(
  sb: Sandbox,
  port: Promise<Socket>,
  bytes: number,
): Promise<number> {
  const socket = await port;
  let received = 0;
  const done = new Promise<bigint>((resolve) => {
    const onData = (c: Buffer): void => {
      received += c.length;
      if (received < bytes) return;
      socket.off("data", onData);
      resolve(process.hrtime.bigint());
    };
    socket.on("data", onData);
  });
  const started = process.hrtime.bigint();
  const dev = `$(grep -l '^${RAW_PORT_NAME}$' /sys/class/virtio-ports/*/name | xargs dirname | xargs basename)`;
  const r = sb.exec(`dd if=/dev/zero of=/dev/${dev} bs=65536 count=${bytes / 65536} 2>/dev/null`);
  const finished = await done;
  await r;
  return bytes / MB / (Number(finished - started) / 1e9);
}
