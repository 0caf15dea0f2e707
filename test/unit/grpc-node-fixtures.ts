/**
 * gRPC on both sides of the intercept proxy in plain Node (node:http2), so the gRPC tests need
 * no toolchain: the same calls as test/fixtures/grpc-probe (grpc-go) make. Messages are raw
 * bytes in gRPC's length-prefixed framing (1 flag byte, 4-byte big-endian length), as a
 * pass-through codec would send them; content type application/grpc, status in trailers.
 *
 * Server: /probe.Echo/Unary echoes "unary:" + request; /probe.Echo/ServerStream sends the
 * request back N times as "<req>#i" (N = its length, at most 64); /probe.Echo/Bidi echoes each
 * message as "bidi:" + message. Every call sets header x-probe-header and trailer
 * x-probe-trailer.
 */
import {
  createSecureServer,
  createServer as createH2cServer,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type Http2SecureServer,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import type { AddressInfo } from "node:net";
import type { SecureContext } from "node:tls";

export function grpcFrame(message: Buffer | string): Buffer {
  const body = Buffer.from(message);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Splits a byte stream into gRPC messages, however the chunks fall. */
export class GrpcDeframer {
  private pending = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.pending = Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    while (this.pending.length >= 5) {
      const length = this.pending.readUInt32BE(1);
      if (this.pending.length < 5 + length) break;
      out.push(this.pending.subarray(5, 5 + length));
      this.pending = this.pending.subarray(5 + length);
    }
    return out;
  }
}

function serveCall(stream: ServerHttp2Stream, method: string): void {
  stream.respond(
    { ":status": 200, "content-type": "application/grpc", "x-probe-header": `h:${method}` },
    { waitForTrailers: true },
  );
  stream.on("wantTrailers", () =>
    stream.sendTrailers({ "grpc-status": "0", "x-probe-trailer": `t:${method}` }),
  );
  const deframer = new GrpcDeframer();
  const received: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => {
    for (const m of deframer.push(chunk)) {
      if (method === "/probe.Echo/Bidi") stream.write(grpcFrame(`bidi:${m.toString()}`));
      else received.push(m);
    }
  });
  stream.on("end", () => {
    const request = received[0]?.toString() ?? "";
    if (method === "/probe.Echo/Unary") stream.write(grpcFrame(`unary:${request}`));
    if (method === "/probe.Echo/ServerStream")
      for (let i = 0; i < Math.min(request.length, 64); i++)
        stream.write(grpcFrame(`${request}#${i}`));
    stream.end();
  });
}

export interface GrpcServer {
  port: number;
  close(): void;
}

/** A gRPC server on 127.0.0.1: TLS (ALPN h2) with `context`, or h2c when absent. */
export async function startGrpcServer(context?: SecureContext): Promise<GrpcServer> {
  const server: Http2Server | Http2SecureServer = context
    ? createSecureServer({ SNICallback: (_name, cb) => cb(null, context) })
    : createH2cServer();
  server.on("stream", (stream, headers) => {
    stream.on("error", () => undefined);
    serveCall(stream, String(headers[":path"]));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

interface CallResult {
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
  messages: string[];
}

/** Opens a call; `onMessage` may write more (bidi). Resolves at the trailers' end of stream. */
function call(
  session: ClientHttp2Session,
  method: string,
  onOpen: (stream: ClientHttp2Stream) => void,
  onMessage: (stream: ClientHttp2Stream, message: string) => void = () => undefined,
): Promise<CallResult> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": "POST",
      ":path": method,
      "content-type": "application/grpc",
      te: "trailers",
    });
    const result: CallResult = { headers: {}, trailers: {}, messages: [] };
    const deframer = new GrpcDeframer();
    stream.on("response", (h) => (result.headers = h));
    stream.on("trailers", (t) => (result.trailers = t));
    stream.on("data", (chunk: Buffer) => {
      for (const m of deframer.push(chunk)) {
        result.messages.push(m.toString());
        onMessage(stream, m.toString());
      }
    });
    stream.on("end", () => resolve(result));
    stream.on("error", reject);
    stream.on("close", () => {
      if (stream.rstCode !== 0) reject(new Error(`${method}: stream reset ${stream.rstCode}`));
    });
    onOpen(stream);
  });
}

function expectOk(method: string, r: CallResult): void {
  const problems = [
    Number(r.headers[":status"]) === 200 ? "" : `status ${String(r.headers[":status"])}`,
    r.headers["x-probe-header"] === `h:${method}` ? "" : "x-probe-header missing",
    r.trailers["grpc-status"] === "0" ? "" : `grpc-status ${String(r.trailers["grpc-status"])}`,
    r.trailers["x-probe-trailer"] === `t:${method}` ? "" : "x-probe-trailer missing",
  ].filter(Boolean);
  if (problems.length > 0) throw new Error(`${method}: ${problems.join(", ")}`);
}

/**
 * The probe client's three calls on one session, each checked (replies, header, trailers):
 * returns the lines grpc-probe prints ("unary ok", "server-stream ok 20", "bidi ok 5").
 */
export async function grpcProbeCalls(session: ClientHttp2Session): Promise<string[]> {
  const lines: string[] = [];
  const unary = await call(session, "/probe.Echo/Unary", (s) => s.end(grpcFrame("hello")));
  expectOk("/probe.Echo/Unary", unary);
  if (unary.messages.join() !== "unary:hello") throw new Error(`unary: ${unary.messages.join()}`);
  lines.push("unary ok");

  const request = "stream-of-twenty";
  const streamed = await call(session, "/probe.Echo/ServerStream", (s) =>
    s.end(grpcFrame(request)),
  );
  expectOk("/probe.Echo/ServerStream", streamed);
  const want = Array.from({ length: request.length }, (_, i) => `${request}#${i}`);
  if (streamed.messages.join() !== want.join())
    throw new Error(`server stream: ${streamed.messages.join()}`);
  lines.push(`server-stream ok ${streamed.messages.length}`);

  // Bidi: each ping is sent only after the previous reply arrived (a real conversation).
  let sent = 0;
  const ping = (s: ClientHttp2Stream): void => {
    if (sent === 5) return void s.end();
    s.write(grpcFrame(`ping-${sent++}`));
  };
  const bidi = await call(session, "/probe.Echo/Bidi", ping, (s) => ping(s));
  expectOk("/probe.Echo/Bidi", bidi);
  const replies = Array.from({ length: 5 }, (_, i) => `bidi:ping-${i}`);
  if (bidi.messages.join() !== replies.join()) throw new Error(`bidi: ${bidi.messages.join()}`);
  lines.push(`bidi ok ${bidi.messages.length}`);
  return lines;
}
