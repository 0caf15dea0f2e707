/**
 * A large HTTPS download through interception with a guest that reads slowly: the proxy must
 * pause the upstream while the guest flow is full, so host memory stays bounded whatever the
 * size. An unbounded proxy would hold most of the body in memory here.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createCa } from "../../src/net/tls/index.js";
import {
  bigRoute,
  guestSocket,
  startUpstreams,
  testProxy,
  type Upstreams,
} from "./net-intercept-guest.js";
import { request } from "node:http";

const TOTAL = 384 * 1024 * 1024;
/** Sent by the upstream but not yet read by the guest: socket buffers, the proxy, the flow. */
const IN_FLIGHT_LIMIT = 32 * 1024 * 1024;
const RSS_GROWTH_LIMIT = 96 * 1024 * 1024;

let up: Upstreams;
before(async () => {
  up = await startUpstreams();
});
after(() => up.close());

test(`a ${TOTAL >> 20} MiB HTTPS download to a slow guest keeps host memory bounded`, async () => {
  const ca = createCa();
  const { p: p } = testProxy(up, ca);
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  let peakInFlight = 0;
  const writtenBefore = bigRoute.bytesWritten;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  try {
    const socket = await guestSocket(p, {
      name: "api.test",
      port: up.httpsPort,
      tls: true,
      caPem: ca.certPem,
    });
    const received = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          createConnection: () => socket as never,
          host: "api.test",
          port: up.httpsPort,
          path: `/big?bytes=${TOTAL}`,
        },
        (res) => {
          let bytes = 0;
          let sinceStall = 0;
          res.on("data", (c: Buffer) => {
            bytes += c.length;
            const inFlight = bigRoute.bytesWritten - writtenBefore - bytes;
            peakInFlight = Math.max(peakInFlight, inFlight);
            sinceStall += c.length;
            // A slow guest: stalls for a second every 64 MiB, long enough for an unbounded
            // proxy to pile up far more than the limit meanwhile.
            if (sinceStall >= 64 << 20) {
              sinceStall = 0;
              res.pause();
              setTimeout(() => res.resume(), 1000);
            }
          });
          res.on("end", () => resolve(bytes));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end();
    });
    assert.equal(received, TOTAL);
  } finally {
    clearInterval(sampler);
    p.close();
  }
  const growth = peak - baseline;
  assert.ok(
    peakInFlight < IN_FLIGHT_LIMIT,
    `${(peakInFlight / 2 ** 20).toFixed(1)} MiB were in flight at the peak`,
  );
  assert.ok(
    growth < RSS_GROWTH_LIMIT,
    `RSS grew by ${(growth / 2 ** 20).toFixed(0)} MiB while streaming ${TOTAL >> 20} MiB`,
  );
});
