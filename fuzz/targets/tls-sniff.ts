/**
 * First bytes of a guest TCP flow in intercept mode: protocol recognition (TLS ClientHello and
 * its SNI, HTTP request line) and the flow that holds bytes until it knows. Oracles: nothing
 * throws; an SNI is only ever reported if its bytes are in the input; the classified stream
 * replays exactly the bytes the guest sent, once and in order, whatever the chunking.
 */
import { Duplex } from "node:stream";
import { connect } from "node:tls";
import { InterceptedFlow, type FlowKind } from "../../src/net/intercept/intercepted-flow.js";
import { serverName, sniff } from "../../src/net/intercept/sniff.js";
import type { GuestStream } from "../../src/net/intercept/guest-stream.js";
import { chunked } from "../random.js";
import { check, splitByLength, type FuzzTarget } from "../target.js";

/** The first flight of a real Node TLS client. */
function clientHello(servername?: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const sink = new Duplex({
      read() {},
      write(chunk: Buffer, _e, cb) {
        resolve(Buffer.from(chunk));
        cb();
        setImmediate(() => socket.destroy());
      },
    });
    const socket = connect({ socket: sink, ...(servername ? { servername } : {}) });
    socket.on("error", () => undefined);
  });
}

function checkSni(input: Buffer, sni: string | undefined | null): void {
  if (typeof sni === "string")
    check(
      sni.length === 0 || input.includes(Buffer.from(sni, "latin1")),
      "SNI not taken from the input",
    );
}

const noop = (): void => undefined;

/** Feeds the input through an InterceptedFlow and reads back what the classified stream holds. */
function throughFlow(input: Buffer): Promise<{ kind: FlowKind; bytes: Buffer }> {
  return new Promise((resolve, reject) => {
    const events = { onConnect: noop, onData: noop, onEnd: noop, onDrain: noop, onError: noop };
    const flow = new InterceptedFlow(events, 50, (kind: FlowKind, stream: GuestStream) => {
      const got: Buffer[] = [];
      stream.on("data", (c: Buffer) => got.push(c));
      stream.on("end", () => {
        flow.destroy();
        resolve({ kind, bytes: Buffer.concat(got) });
      });
      stream.on("error", reject);
    });
    for (const chunk of chunked(input, 1024)) flow.write(chunk, noop);
    flow.end();
  });
}

export const tlsSniffTarget: FuzzTarget = {
  name: "tls-sniff",
  description: "TLS ClientHello/SNI and HTTP recognition of guest flows (src/net/intercept)",
  maxInputBytes: 80 * 1024,
  timeLimitMs: 2000,
  // TLS records: 5-byte header, u16 length at 3.
  units: {
    split: (input) => splitByLength(input, 5, (b, at) => 5 + b.readUInt16BE(at + 3)),
    fix: (unit) => {
      if (unit.length < 5) return unit;
      const out = Buffer.from(unit);
      out.writeUInt16BE(Math.min(0xffff, unit.length - 5), 3);
      return out;
    },
  },
  dictionary: [
    Buffer.from([0x16, 0x03, 0x01]),
    Buffer.from([0, 0]),
    Buffer.from("GET "),
    Buffer.from([0xff, 0xff]),
  ],
  seeds: async () => [
    await clientHello("api.example.com"),
    await clientHello(),
    Buffer.from("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    Buffer.from("SSH-2.0-OpenSSH_9.2\r\n"),
  ],
  async run(input) {
    const sniffed = sniff(input);
    if (sniffed.kind === "tls") checkSni(input, sniffed.sni);
    // The same bytes as a ClientHello body straight into the extension parser.
    checkSni(input, serverName(input));
    const { kind, bytes } = await throughFlow(input);
    if (kind.kind === "tls") checkSni(input, kind.sni);
    check(
      bytes.equals(input),
      `the classified stream holds ${bytes.length} of ${input.length} bytes, or other ones`,
    );
  },
};
