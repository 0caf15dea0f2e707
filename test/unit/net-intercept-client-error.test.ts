/**
 * A malformed request is one refusal: one 400 and one event, however many more chunks the
 * guest sends on that connection afterwards. Node's server reports the parse error again for
 * every later chunk (and at the end); each report used to add an event, a timer and a
 * `finish` listener (found by `npm run fuzz -- --target http`).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createCa } from "../../src/net/tls/index.js";
import { guestDial, startUpstreams, testProxy, type Upstreams } from "./net-intercept-guest.js";

let up: Upstreams;
before(async () => {
  up = await startUpstreams();
});
after(() => up.close());

test("a malformed request followed by more data is one 400 and one event", async () => {
  const { p, events } = testProxy(up, createCa(), { allowedHosts: ["plain.test"] });
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on("warning", onWarning);
  try {
    const [ip] = await p.resolveIpv4("plain.test");
    const socket = await guestDial(p, ip!, up.httpPort);
    const received: Buffer[] = [];
    socket.on("data", (c: Buffer) => received.push(c));
    const ended = new Promise((resolve) => socket.once("end", resolve));
    // A bad request line, then more bytes in chunks of their own that arrive before the
    // proxy has answered, then a half-close.
    socket.write("POST +c HTTP/1.1\r\nHost: plain.test\r\n\r\n");
    for (let i = 0; i < 20; i++) socket.write(`more-${i}\r\n`);
    socket.end();
    await ended;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const reply = Buffer.concat(received).toString("latin1");
    assert.equal(reply.match(/HTTP\/1\.1 400/g)?.length, 1, reply);
    assert.equal(events.length, 1, JSON.stringify(events));
    assert.equal(events[0]?.code, "invalid_request");
    assert.deepEqual(
      warnings.filter((w) => w.name === "MaxListenersExceededWarning").map((w) => w.message),
      [],
    );
  } finally {
    process.off("warning", onWarning);
    p.close();
  }
});
