import { test } from "node:test";
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { buildDnsResponse, parseDnsQuery, RCODE_OK } from "../../src/net/dns-message.js";
import { parseIpv4 } from "../../src/net/addresses.js";
import { resolverFor } from "../../src/sandbox/network.js";

test("dnsServers: lookups go to the given server, not the host resolver", async () => {
  const asked: string[] = [];
  const server = createSocket("udp4");
  server.on("message", (msg, from) => {
    const q = parseDnsQuery(msg);
    if (!q.ok) return;
    asked.push(q.question.name);
    const reply = buildDnsResponse(q.question, RCODE_OK, [parseIpv4("192.0.2.77") ?? 0]);
    server.send(reply, from.port, from.address);
  });
  await new Promise<void>((r) => server.bind(0, "127.0.0.1", () => r()));
  try {
    const resolve = resolverFor([`127.0.0.1:${server.address().port}`]);
    assert.ok(resolve);
    // A name the host resolver could never answer with this address.
    assert.deepEqual(await resolve("only-on-this-server.test"), ["192.0.2.77"]);
    assert.deepEqual(asked, ["only-on-this-server.test"]);
    assert.equal(resolverFor([]), undefined);
  } finally {
    server.close();
  }
});
