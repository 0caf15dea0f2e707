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

/** The port's device in the guest, as a shell expression. */
const RAW_DEV = `/dev/$(grep -l '^${RAW_PORT_NAME}$' /sys/class/virtio-ports/*/name | xargs dirname | xargs basename)`;

/**
 * The other direction, the one FUSE reads travel: the host writes `bytes` into the socket
 * and a guest `head -c` reads them from the port (the guest's virtio-console driver hands
 * them over in page-sized buffers). Timed in the guest, from the first read to the last.
 */
export async function rawSerialInMBps(
  sb: Sandbox,
  port: Promise<Socket>,
  bytes: number,
): Promise<number> {
  const socket = await port;
  socket.write(Buffer.alloc(bytes));
  const r = await sb.exec(
    `a=$(date +%s%N); head -c ${bytes} ${RAW_DEV} >/dev/null; b=$(date +%s%N); echo $(( (b-a)/1000 ))`,
  );
  const us = Number(r.stdout.trim());
  if (r.exitCode !== 0 || !Number.isFinite(us)) throw new Error(`raw read: ${r.stderr}`);
  return bytes / MB / (us / 1e6);
}

/**
 * One small message to the host and its echo back, with no relay in between: the floor
 * under a FUSE request's round trip (which adds the guest kernel's FUSE queue, the relay
 * thread and the server). Microseconds per round trip, timed in the guest (perl is in the
 * default image).
 */
export async function rawRoundTripUs(
  sb: Sandbox,
  port: Promise<Socket>,
  rounds: number,
): Promise<number> {
  const socket = await port;
  const echo = (c: Buffer): void => void socket.write(c);
  socket.on("data", echo);
  try {
    const r = await sb.exec(
      `d=${RAW_DEV}; a=$(date +%s%N); perl -e 'open(my $f, "+<", $ARGV[0]) or die "$!"; ` +
        `for (1..${rounds}) { syswrite($f, "x" x 40) == 40 or die; my $b = ""; ` +
        `while (length($b) < 40) { sysread($f, $b, 40 - length($b), length($b)) or die } }' "$d"; ` +
        `b=$(date +%s%N); echo $(( (b-a)/1000 ))`,
    );
    const us = Number(r.stdout.trim());
    if (r.exitCode !== 0 || !Number.isFinite(us)) throw new Error(`raw round trip: ${r.stderr}`);
    return us / rounds;
  } finally {
    socket.off("data", echo);
  }
}
