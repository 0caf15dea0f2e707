// `node --import tsx bench/http-policy.ts`: per-request cost of the HTTP policy (secrets and
// rules) against the pass-through policy, and SSE rewrite throughput against a PassThrough,
// both measured in the same run. JSON on stdout. No VM, no sockets: the host-side CPU cost only.
import { PassThrough, Readable, type Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { HttpPolicy, HttpRequestHead } from "../src/net/intercept/contract.js";
import { PASS_THROUGH_POLICY } from "../src/net/intercept/contract.js";
import { createHttpPolicy, sseDataTransform } from "../src/net/http-policy/index.js";

const body = { readBody: async () => Buffer.alloc(0) };

async function perRequestUs(policy: HttpPolicy, request: HttpRequestHead, n: number) {
  for (let i = 0; i < 2000; i++) await policy.onRequest(request, body); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await policy.onRequest(request, body);
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

async function throughputMBs(make: () => Transform, totalMB: number) {
  const line = Buffer.from(`data: {"token":"sk-live-abc","text":"${"x".repeat(200)}"}\r\n\r\n`);
  const chunk = Buffer.concat(Array.from({ length: Math.ceil(16384 / line.length) }, () => line));
  const count = Math.ceil((totalMB * 1024 * 1024) / chunk.length);
  const t0 = process.hrtime.bigint();
  await pipeline(
    Readable.from(
      (function* () {
        for (let i = 0; i < count; i++) yield chunk;
      })(),
    ),
    make(),
    async (src) => {
      for await (const _ of src);
    },
  );
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return Math.round((count * chunk.length) / 1024 / 1024 / s);
}

const policy = createHttpPolicy({
  secrets: [
    { name: "A", value: "real-a", hosts: ["api.example.com"] },
    { name: "B", value: "real-b", hosts: ["other.example.com"] },
    { name: "C", value: "real-c", hosts: ["*.third.test"] },
  ],
  rules: [
    { action: "block", hosts: ["evil.test"] },
    { action: "block", path: "/admin/*" },
    { setHeaders: { "X-Via": "wheellock" }, methods: ["GET"] },
    { deleteHeaders: ["X-Debug"] },
    { phase: "after", setResponseHeaders: { "X-Seen": "1" } },
  ],
});
const ph = policy.placeholders();
const request: HttpRequestHead = {
  method: "GET",
  scheme: "https",
  host: "api.example.com",
  port: 443,
  target: "/v1/items?page=2&sort=name",
  headers: [
    ["Host", "api.example.com"],
    ["User-Agent", "curl/8.5.0"],
    ["Accept", "*/*"],
    ["Authorization", `Bearer ${ph.A}`],
    ["Cookie", "session=aGVsbG8gd29ybGQgdGhpcyBpcyBhIGNvb2tpZQ=="],
  ],
};
const n = 20000;
const repl = [{ find: Buffer.from("sk-live"), replace: Buffer.from("[redacted]") }];
const result = {
  onRequestUs: {
    passThrough: await perRequestUs(PASS_THROUGH_POLICY, request, n),
    threeSecretsFiveRules: await perRequestUs(policy, request, n),
  },
  sseMBs: {
    passThrough: await throughputMBs(() => new PassThrough(), 256),
    dataLineRewrite: await throughputMBs(() => sseDataTransform(repl), 256),
  },
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
