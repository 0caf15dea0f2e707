/**
 * HTTP/1.x request heads (and bodies) from the guest through the intercept proxy: Node's
 * parser, admission (Host, allowlist), the exchange, the upstream request, the response back.
 * The upstream is a server on 127.0.0.1 that records what reaches it; only `allowed.test` is
 * allowed, and nothing resolves anywhere but there. Oracles: nothing throws or rejects
 * (process-level too); every connection ends (no hang); every request the upstream receives
 * carries the allowed Host, and never more requests than the proxy reported forwarding (a
 * desync between the two parsers would show as an extra one).
 */
import { createServer, type Server } from "node:http";
import type { Agent } from "node:http";
import type { AddressInfo } from "node:net";
import {
  InterceptUpstream,
  PASS_THROUGH_POLICY,
  type NetworkEventInfo,
} from "../../src/net/intercept/index.js";
import { EgressPolicy } from "../../src/net/policy/index.js";
import { createCa } from "../../src/net/tls/index.js";
import { isDenied } from "../../src/net/upstream.js";
import { chunked } from "../random.js";
import { check, type FuzzTarget } from "../target.js";

const ALLOWED = "allowed.test";
/** Inputs say `{port}` where the upstream's port goes (it differs from run to run). */
const PORT_MARK = /\{port\}/g;

interface State {
  proxy: InterceptUpstream;
  upstream: Server;
  port: number;
  address: string;
  upstreamRequests: number;
  badHosts: string[];
  forwarded: number;
}
let state: State | undefined;

const seeds = [
  `GET / HTTP/1.1\r\nHost: ${ALLOWED}:{port}\r\n\r\n`,
  `POST /p?q=1 HTTP/1.1\r\nHost: ${ALLOWED}:{port}\r\nContent-Length: 5\r\n\r\nhello`,
  `POST /c HTTP/1.1\r\nHost: ${ALLOWED}:{port}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
  `GET /a HTTP/1.1\r\nHost: ${ALLOWED}:{port}\r\n\r\nGET /b HTTP/1.1\r\nHost: other.test:{port}\r\n\r\n`,
  `GET http://other.test/ HTTP/1.1\r\nHost: ${ALLOWED}:{port}\r\n\r\n`,
  `GET / HTTP/1.1\r\nHost: ${ALLOWED}:{port}\r\nHost: other.test:{port}\r\n\r\n`,
  `GET /ws HTTP/1.1\r\nHost: ${ALLOWED}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
  `CONNECT other.test:443 HTTP/1.1\r\nHost: other.test:443\r\n\r\n`,
  `GET / HTTP/1.0\r\nHost: ${ALLOWED.toUpperCase()}.:{port}\r\nExpect: 100-continue\r\n\r\n`,
  `OPTIONS * HTTP/1.1\r\nHost: ${ALLOWED}:{port}\r\nContent-Length: 0\r\n\r\n`,
];

async function start(): Promise<State> {
  const s: Partial<State> & Pick<State, "upstreamRequests" | "badHosts" | "forwarded"> = {
    upstreamRequests: 0,
    badHosts: [],
    forwarded: 0,
  };
  const upstream = createServer((req, res) => {
    s.upstreamRequests++;
    const host = req.headers.host ?? "";
    if (host !== `${ALLOWED}:${s.port}` && host !== ALLOWED) s.badHosts.push(host);
    req.resume();
    req.on("end", () => res.end(`seen ${req.method} ${req.url}\n`));
  });
  // Upgrades get an ordinary response (delimited by closing), as a server declining them.
  upstream.on("upgrade", (_req, socket) => socket.end("HTTP/1.1 200 OK\r\n\r\nno upgrade"));
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const port = (upstream.address() as AddressInfo).port;
  const proxy = new InterceptUpstream({
    policy: new EgressPolicy({ allowedHosts: [ALLOWED], allowPrivateHosts: true }),
    httpPolicy: PASS_THROUGH_POLICY,
    ca: createCa(),
    resolveOverrides: new Map([[ALLOWED, "127.0.0.1"]]),
    // Nothing else may resolve: the fuzzer must never send traffic off this machine.
    resolve4: async (name) => {
      throw new Error(`${name} does not resolve here`);
    },
    connectTimeoutMs: 1000,
    sniffTimeoutMs: 200,
    onEvent: (e: NetworkEventInfo) => {
      // Forwarded, or perhaps forwarded (the guest may have left before the response).
      if (!e.blocked) s.forwarded++;
    },
  });
  const [address] = await proxy.resolveIpv4(ALLOWED);
  if (address === undefined) throw new Error("no synthetic address for the allowed host");
  return Object.assign(s, { proxy, upstream, port, address }) as State;
}

/** The proxy's keep-alive agent for plain HTTP (private: the harness looks inside). */
function agentOf(proxy: InterceptUpstream): Agent {
  return (proxy as unknown as { dialer: { httpAgent: Agent } }).dialer.httpAgent;
}

/** One guest connection: sends the input, half-closes, waits for the proxy to finish it. */
function exchange(st: State, input: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const flow = st.proxy.connectTcp(st.address, st.port, {
      onConnect: () => undefined,
      onData: () => undefined,
      onDrain: () => undefined,
      onEnd: () => resolve(),
      onError: () => resolve(),
    });
    check(!isDenied(flow), "the proxy refused a flow to the allowed host");
    for (const chunk of chunked(input)) flow.write(chunk, () => undefined);
    flow.end();
  });
}

export const httpTarget: FuzzTarget = {
  name: "http",
  description: "HTTP request heads through the intercept proxy (src/net/intercept)",
  maxInputBytes: 16 * 1024,
  timeLimitMs: 5000,
  units: {
    // Header lines, so lines get dropped, duplicated and swapped between requests.
    split: (input) => {
      const out: Buffer[] = [];
      let at = 0;
      for (let nl = input.indexOf(10); nl >= 0; nl = input.indexOf(10, at)) {
        out.push(input.subarray(at, nl + 1));
        at = nl + 1;
      }
      if (at < input.length) out.push(input.subarray(at));
      return out;
    },
  },
  dictionary: [
    "Transfer-Encoding: chunked\r\n",
    "Content-Length: 10\r\n",
    "Content-Length: -1\r\n",
    "Host: other.test\r\n",
    `Host: ${ALLOWED}:{port}\r\n`,
    "Connection: close\r\n",
    "Connection: keep-alive, Upgrade\r\n",
    "Upgrade: h2c\r\n",
    ":{port}",
    "\r\n\r\n",
    " HTTP/1.1\r\n",
    "\t",
    "\0",
  ].map((s) => Buffer.from(s)),
  seeds: () => seeds.map((s) => Buffer.from(s)),
  async setup() {
    state = await start();
  },
  async teardown() {
    state?.proxy.close();
    state?.upstream.closeAllConnections();
    state?.upstream.close();
  },
  async run(input) {
    const st = state;
    if (!st) throw new Error("http target used without setup");
    const bytes = Buffer.from(
      input.toString("latin1").replace(PORT_MARK, String(st.port)),
      "latin1",
    );
    await exchange(st, bytes);
    // The proxy may still be reading what the guest sent after it answered: let that finish
    // inside this input, so anything it does is blamed on the right one.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    // Every upstream request this input made has finished or was torn down: the proxy's
    // agent holds no socket for one (after a moment for responses still draining).
    const busy = (): number => Object.values(agentOf(st.proxy).sockets).flat().length;
    for (let waitedMs = 0; busy() > 0 && waitedMs < 200; waitedMs += 10)
      await new Promise((resolve) => setTimeout(resolve, 10));
    check(busy() === 0, `${busy()} upstream request(s) still hold a socket after the guest left`);
    check(
      st.badHosts.length === 0,
      `upstream received Host ${JSON.stringify(st.badHosts.splice(0))}`,
    );
    check(
      st.upstreamRequests <= st.forwarded,
      `upstream saw ${st.upstreamRequests} requests, the proxy forwarded ${st.forwarded}`,
    );
  },
};
