/**
 * Protocol recognition on hostile first bytes: real ClientHellos (SNI found, whatever the
 * split), then truncated, mutated and random input, which must classify without throwing and
 * never report an SNI that is not in the bytes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { sniff } from "../../src/net/intercept/sniff.js";
import { mulberry32 } from "../helpers/seeded-random.js";
import { clientHello } from "../helpers/tls-client-hello.js";

test("a real ClientHello yields its SNI; none without SNI; need-more while incomplete", async () => {
  const hello = await clientHello("api.example.com");
  assert.deepEqual(sniff(hello), { kind: "tls", sni: "api.example.com", offersH2: false });
  for (let cut = 1; cut < hello.length; cut += 7) {
    const r = sniff(hello.subarray(0, cut));
    assert.equal(r.kind, "need-more", `cut at ${cut}`);
    // The wait it asks for never goes past the real ClientHello.
    if (r.kind === "need-more") assert.ok(r.minBytes > cut && r.minBytes <= hello.length);
  }
  const bare = await clientHello();
  assert.deepEqual(sniff(bare), { kind: "tls", sni: undefined, offersH2: false });
});

test("an ALPN offer of h2 is seen, in any position; http/1.1 alone is not h2", async () => {
  const both = await clientHello("api.example.com", ["http/1.1", "h2"]);
  assert.deepEqual(sniff(both), { kind: "tls", sni: "api.example.com", offersH2: true });
  const h1 = await clientHello("api.example.com", ["http/1.1"]);
  assert.deepEqual(sniff(h1), { kind: "tls", sni: "api.example.com", offersH2: false });
  // "h2c" or "h2-16" are other protocols, not h2 over TLS.
  const lookalike = await clientHello("api.example.com", ["h2c", "h2-16"]);
  assert.deepEqual(sniff(lookalike), { kind: "tls", sni: "api.example.com", offersH2: false });
});

test("the HTTP/2 preface is h2c once complete; a request line starting alike is HTTP/1", () => {
  const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  assert.equal(sniff(preface).kind, "h2c");
  assert.equal(sniff(Buffer.concat([preface, Buffer.from([0, 0, 0, 4])])).kind, "h2c");
  for (let cut = 1; cut < preface.length; cut++)
    assert.equal(sniff(preface.subarray(0, cut)).kind, "need-more", `cut at ${cut}`);
  assert.equal(sniff(Buffer.from("PRI * HTTP/1.1\r\n")).kind, "http");
  assert.equal(sniff(Buffer.from("POST / HTTP/1.1\r\n")).kind, "http");
});

test("a prefix of the preface asks for one more byte, not the whole preface", () => {
  // A flow waits for minBytes before it looks again: a short HTTP/1 request from a method
  // starting with "P" (found by the tls-sniff fuzz target: "PGET / HTTP/1.1" is decided at
  // 5 bytes) must not wait for 24 it may never send.
  const short = Buffer.from("PUT / HTTP/1.0\r\n\r\n");
  for (let cut = 1; cut < 4; cut++) {
    const r = sniff(short.subarray(0, cut));
    assert.deepEqual(r, { kind: "need-more", minBytes: cut + 1 }, `cut at ${cut}`);
  }
  assert.equal(sniff(short.subarray(0, 4)).kind, "http");
});

test("HTTP request lines are recognised; other bytes are not", () => {
  assert.equal(sniff(Buffer.from("GET / HTTP/1.1\r\n")).kind, "http");
  assert.equal(sniff(Buffer.from("OPTIONS * HTTP/1.1\r\n")).kind, "http");
  assert.equal(sniff(Buffer.from("GE")).kind, "need-more");
  assert.equal(sniff(Buffer.from("SSH-2.0-OpenSSH_9.2\r\n")).kind, "other");
  assert.equal(sniff(Buffer.from("get / HTTP/1.1\r\n")).kind, "other");
  assert.equal(sniff(Buffer.from(" GET /")).kind, "other");
  assert.equal(sniff(Buffer.from("A".repeat(40))).kind, "other");
});

test("mutated and random first bytes never throw and never invent an SNI", async () => {
  const rand = mulberry32(0x5eed);
  const hello = await clientHello("fuzz.example.org");
  for (let i = 0; i < 5000; i++) {
    const buf = Buffer.from(hello);
    const flips = 1 + Math.floor(rand() * 8);
    for (let f = 0; f < flips; f++) buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
    const cut = rand() < 0.3 ? Math.floor(rand() * buf.length) : buf.length;
    const r = sniff(buf.subarray(0, cut));
    if (r.kind === "tls" && r.sni !== undefined)
      assert.ok(buf.includes(Buffer.from(r.sni, "latin1")), "SNI must come from the bytes");
  }
  for (let i = 0; i < 5000; i++) {
    const len = Math.floor(rand() * 600);
    const buf = Buffer.alloc(len);
    for (let j = 0; j < len; j++) buf[j] = Math.floor(rand() * 256);
    if (len > 0 && rand() < 0.5) buf[0] = 0x16;
    if (len > 1 && rand() < 0.5) buf[1] = 0x03;
    sniff(buf);
  }
});
