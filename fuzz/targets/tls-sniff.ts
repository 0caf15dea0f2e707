/**
 * First bytes of a guest TCP flow in intercept mode: protocol recognition (TLS ClientHello and
 * its SNI, HTTP request line) and the flow that holds bytes until it knows. Oracles: nothing
 * throws; an SNI is only ever reported if its bytes are in the input; the classified stream
 * replays exactly the bytes the guest sent, once and in order, whatever the chunking.
 */
import { InterceptedFlow, type FlowKind } from "../../src/net/intercept/intercepted-flow.js";
import { serverName, sniff } from "../../src/net/intercept/sniff.js";
import type { GuestStream } from "../../src/net/intercept/guest-stream.js";
import { clientHello } from "../../test/helpers/tls-client-hello.js";
import { chunked } from "../random.js";
import { check, splitByLength, type FuzzTarget } from "../target.js";

/** The same handshake bytes re-cut into records of `recordBytes` (TLS allows any split). */
function fragmented(hello: Buffer, recordBytes: number): Buffer {
  const out: Buffer[] = [];
  const body = hello.subarray(5, 5 + hello.readUInt16BE(3));
  for (let at = 0; at < body.length; at += recordBytes) {
    const part = body.subarray(at, at + recordBytes);
    out.push(Buffer.from([0x16, 3, 1, part.length >> 8, part.length & 0xff]), part);
  }
  return Buffer.concat(out);
}

/** The record payloads joined: where a ClientHello split over records has its SNI whole. */
function handshakeBytes(input: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at + 5 <= input.length;) {
    const end = Math.min(input.length, at + 5 + input.readUInt16BE(at + 3));
    parts.push(input.subarray(at + 5, end));
    at = end;
  }
  return Buffer.concat(parts);
}

function checkSni(input: Buffer, sni: string | undefined | null): void {
  if (typeof sni === "string")
    check(
      sni.length === 0 || input.includes(Buffer.from(sni, "latin1")),
      "SNI not taken from the input",
    );
}

/**
 * The flow does not look again until `minBytes` are held, which is safe when (1) no prefix
 * shorter than that is recognised as TLS (it may already be seen not to be: that answer
 * stays), and (2) an answer, once given, is the answer for every longer prefix.
 */
function checkWaitBound(input: Buffer): void {
  let decided: string | undefined;
  const cuts = [1, 5, 6, 9, 64, input.length >> 1, input.length].sort((a, b) => a - b);
  for (const cut of cuts) {
    if (cut > input.length) continue;
    const r = sniff(input.subarray(0, cut));
    if (r.kind !== "need-more") {
      const answer = JSON.stringify(r);
      check(
        decided === undefined || decided === answer,
        `answer changed from ${decided} to ${answer}`,
      );
      decided = answer;
      continue;
    }
    check(decided === undefined, `undecided at ${cut} bytes after answering ${decided}`);
    check(r.minBytes > cut, `need-more at ${cut} bytes asks for only ${r.minBytes}`);
    if (r.minBytes - 1 > input.length) continue;
    const early = sniff(input.subarray(0, r.minBytes - 1)).kind;
    check(
      early === "need-more" || early === "other",
      `${early} before the ${r.minBytes} bytes asked for`,
    );
  }
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
    fragmented(await clientHello("frag.example.com"), 1),
    // A ClientHello that announces 16 KiB and sends 12: held, waiting for the rest.
    Buffer.concat([
      Buffer.from([0x16, 3, 1, 0x40, 0, 1, 0, 0x3f, 0xfc]),
      Buffer.alloc(12 * 1024, 7),
    ]),
    await clientHello(),
    Buffer.from("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    Buffer.from("SSH-2.0-OpenSSH_9.2\r\n"),
  ],
  async run(input) {
    const sniffed = sniff(input);
    checkWaitBound(input);
    if (sniffed.kind === "tls") checkSni(handshakeBytes(input), sniffed.sni);
    // The same bytes as a ClientHello body straight into the extension parser.
    checkSni(input, serverName(input));
    const { kind, bytes } = await throughFlow(input);
    if (kind.kind === "tls") checkSni(handshakeBytes(input), kind.sni);
    check(
      bytes.equals(input),
      `the classified stream holds ${bytes.length} of ${input.length} bytes, or other ones`,
    );
  },
};
