/**
 * gRPC through the intercept proxy with no toolchain: a Node gRPC client (node:http2, gRPC
 * framing) as the guest and a Node gRPC server upstream (test/unit/grpc-node-fixtures.ts),
 * making the same unary, server-streaming and bidi calls as the grpc-go probe in
 * net-intercept-grpc.test.ts (which needs go and runs where it is installed). Over TLS (ALPN h2
 * toward the guest, verified TLS upstream) and h2c; a host outside the allowlist is refused.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  InterceptUpstream,
  PASS_THROUGH_POLICY,
  type NetworkEventInfo,
} from "../../src/net/intercept/index.js";
import { EgressPolicy } from "../../src/net/policy/index.js";
import { createCa, LeafCertificates } from "../../src/net/tls/index.js";
import { grpcProbeCalls, startGrpcServer, type GrpcServer } from "./grpc-node-fixtures.js";
import { guestH2 } from "./net-intercept-h2-fixtures.js";
import { settle } from "./net-intercept-guest.js";

const ca = createCa();
const upstreamCa = createCa();
let tlsServer: GrpcServer;
let plainServer: GrpcServer;
const proxies: InterceptUpstream[] = [];

before(async () => {
  const upstreamLeaf = new LeafCertificates(upstreamCa).contextFor("api.test");
  [tlsServer, plainServer] = await Promise.all([startGrpcServer(upstreamLeaf), startGrpcServer()]);
});
after(() => {
  for (const p of proxies) p.close();
  tlsServer.close();
  plainServer.close();
});

function proxy(allowedHosts: string[]) {
  const events: NetworkEventInfo[] = [];
  const p = new InterceptUpstream({
    policy: new EgressPolicy({ allowedHosts, allowPrivateHosts: true }),
    httpPolicy: PASS_THROUGH_POLICY,
    ca,
    upstreamCaPems: [upstreamCa.certPem],
    resolveOverrides: new Map([
      ["api.test", "127.0.0.1"],
      ["other.test", "127.0.0.1"],
    ]),
    onEvent: (e) => events.push(e),
  });
  proxies.push(p);
  return { p, events };
}

test("gRPC unary, server-streaming and bidi calls work through TLS interception (Node client)", async () => {
  const { p, events } = proxy(["api.test"]);
  const session = await guestH2(p, "api.test", tlsServer.port, { caPem: ca.certPem });
  try {
    assert.deepEqual(await grpcProbeCalls(session), [
      "unary ok",
      "server-stream ok 16",
      "bidi ok 5",
    ]);
  } finally {
    session.close();
  }
  await settle(events, 3);
  assert.deepEqual(events.map((e) => e.url).sort(), [
    `https://api.test:${tlsServer.port}/probe.Echo/Bidi`,
    `https://api.test:${tlsServer.port}/probe.Echo/ServerStream`,
    `https://api.test:${tlsServer.port}/probe.Echo/Unary`,
  ]);
  assert.ok(events.every((e) => !e.blocked && e.status === 200));
});

test("gRPC over h2c (prior knowledge) works through interception (Node client)", async () => {
  const { p } = proxy(["api.test"]);
  const session = await guestH2(p, "api.test", plainServer.port, undefined);
  try {
    assert.deepEqual(await grpcProbeCalls(session), [
      "unary ok",
      "server-stream ok 16",
      "bidi ok 5",
    ]);
  } finally {
    session.close();
  }
});

test("a gRPC call to a host outside the allowlist is refused (Node client)", async () => {
  const { p, events } = proxy(["other.test"]);
  const session = await guestH2(p, "api.test", tlsServer.port, { caPem: ca.certPem });
  try {
    await assert.rejects(grpcProbeCalls(session));
  } finally {
    session.close();
  }
  await settle(events, 1);
  assert.ok(events.some((e) => e.blocked && e.host === "api.test"));
});
