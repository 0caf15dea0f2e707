// Servers on 127.0.0.1 for intercept-mode tests and benchmarks: HTTP and HTTPS (a test CA the
// sandbox gets as upstreamCa) that record what they receive, a TCP echo and a UDP counter.
import { execFileSync } from "node:child_process";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createTcpServer, type AddressInfo, type Server } from "node:net";
import { join } from "node:path";

export interface SeenRequest {
  method: string;
  url: string;
  host: string;
  headers: IncomingMessage["headers"];
  tls: boolean;
}

/** A CA and a leaf for `names`, made with the openssl CLI (independent of wheellock's CA code). */
export function makeTestCa(
  dir: string,
  names: string[],
): { caPath: string; cert: string; key: string } {
  const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"]);
  run([
    "req",
    "-x509",
    "-new",
    "-key",
    "ca.key",
    "-subj",
    "/CN=wheellock test upstream CA",
    "-days",
    "2",
    "-out",
    "ca.pem",
  ]);
  run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key"]);
  run(["req", "-new", "-key", "leaf.key", "-subj", `/CN=${names[0]}`, "-out", "leaf.csr"]);
  const ext = `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}\nextendedKeyUsage=serverAuth\n`;
  execFileSync("sh", ["-c", `printf '%s' "$EXT" > leaf.ext`], {
    cwd: dir,
    env: { ...process.env, EXT: ext },
  });
  run([
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    "leaf.ext",
    "-out",
    "leaf.pem",
  ]);
  return {
    caPath: join(dir, "ca.pem"),
    cert: readFileSync(join(dir, "leaf.pem"), "utf8"),
    key: readFileSync(join(dir, "leaf.key"), "utf8"),
  };
}

/** Streams `size` bytes of a fixed pattern without holding them (for the 1 GB download). */
function streamBytes(res: ServerResponse, size: number): void {
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size });
  const chunk = Buffer.alloc(256 * 1024, 0x61);
  let left = size;
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      left -= n;
      if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        res.once("drain", pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

export class InterceptServers {
  readonly seen: SeenRequest[] = [];
  udpMessages = 0;
  httpPort = 0;
  httpsPort = 0;
  tcpPort = 0;
  udpPort = 0;
  private readonly servers: Server[] = [];
  private udp: UdpSocket | undefined;

  private handle(tls: boolean, req: IncomingMessage, res: ServerResponse): void {
    this.seen.push({
      method: req.method ?? "",
      url: req.url ?? "",
      host: req.headers.host ?? "",
      headers: req.headers,
      tls,
    });
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/big") return streamBytes(res, Number(url.searchParams.get("size") ?? 0));
    if (url.pathname === "/sse") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("event: greeting\ndata: hello world\n\n");
      setTimeout(() => res.end("data: goodbye world\n\n"), 50);
      return;
    }
    // Never echo request headers: a server reflecting a secret would put it into the guest.
    res.end(`ok ${tls ? "https" : "http"} ${req.method} ${url.pathname}\n`);
  }

  async start(tlsIdentity: { cert: string; key: string }): Promise<void> {
    const http = createHttpServer((req, res) => this.handle(false, req, res));
    const https = createHttpsServer(tlsIdentity, (req, res) => this.handle(true, req, res));
    const tcp = createTcpServer((s) => {
      s.on("error", () => undefined);
      s.on("data", (d) => s.write(`pong:${d.toString().trim()}\n`));
    });
    for (const s of [http, https, tcp]) {
      await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
      this.servers.push(s);
    }
    this.httpPort = (http.address() as AddressInfo).port;
    this.httpsPort = (https.address() as AddressInfo).port;
    this.tcpPort = (tcp.address() as AddressInfo).port;
    const udp = createSocket("udp4");
    udp.on("message", () => this.udpMessages++);
    await new Promise<void>((r) => udp.bind(0, "127.0.0.1", () => r()));
    this.udp = udp;
    this.udpPort = udp.address().port;
  }

  /** Requests whose path contains `marker`. */
  requestsFor(marker: string): SeenRequest[] {
    return this.seen.filter((r) => r.url.includes(marker));
  }

  close(): void {
    for (const s of this.servers) {
      s.close();
      (s as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
    }
    this.udp?.close();
  }
}
